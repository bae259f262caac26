//go:build unix

package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test, in the way Mender does it: the test binary re-runs itself
// as a child that saves in a tight loop, the parent SIGKILLs it at a random
// moment and then checks what is on disk. It proves that a Save is atomic
// against the process dying at any point; durability across a power cut
// rests on the fsyncs, which no test on a running kernel can observe.

const (
	crashEnvDir = "STORE_CRASH_HELPER_DIR"
	crashKills  = 20
)

// crashDoc grows and shrinks with Seq so that a non-atomic write (in place,
// without truncation, or torn) would show up as a bad Sum or a parse error.
type crashDoc struct {
	Version int    `json:"version"`
	Seq     int    `json:"seq"`
	Pad     string `json:"pad"`
	Sum     string `json:"sum"`
}

func newCrashDoc(seq int) crashDoc {
	pad := strings.Repeat(string(rune('a'+seq%26)), (seq*997)%(64<<10))
	return crashDoc{Version: 1, Seq: seq, Pad: pad, Sum: crashSum(seq, pad)}
}

func crashSum(seq int, pad string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(seq) + "/" + pad))
	return hex.EncodeToString(h[:])
}

// TestHelperProcess is the child of TestCrashDuringSave; run on its own it
// skips. It continues from the document on disk and prints each sequence
// number once its Save has returned.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("helper process for TestCrashDuringSave")
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	var d crashDoc
	if err := s.Load("doc", &d); err != nil && !errors.Is(err, ErrNotFound) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	// Bounded, so that an orphan cannot outlive a parent that died.
	deadline := time.Now().Add(10 * time.Second)
	for seq := d.Seq + 1; time.Now().Before(deadline); seq++ {
		if err := s.Save("doc", newCrashDoc(seq)); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		fmt.Println(seq)
	}
	os.Exit(0)
}

func TestCrashDuringSave(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	prev := 0 // sequence number on disk before this round
	for round := range crashKills {
		committed := crashRound(t, dir)
		// The child may have completed the Save in flight without having
		// printed it yet, so the document on disk is the last reported one
		// or the one after it — never anything else.
		base := prev
		if committed > 0 {
			base = committed
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		var d crashDoc
		err = s.Load("doc", &d)
		s.Close()
		switch {
		case errors.Is(err, ErrNotFound) && base == 0:
			continue
		case err != nil:
			t.Fatalf("round %d: Load after kill: %v", round, err)
		}
		if d.Seq != base && d.Seq != base+1 {
			t.Fatalf("round %d: document seq %d, want %d or %d", round, d.Seq, base, base+1)
		}
		if want := newCrashDoc(d.Seq); d != want {
			t.Fatalf("round %d: document seq %d is not the one saved (pad %d bytes, sum %s)", round, d.Seq, len(d.Pad), d.Sum)
		}
		prev = d.Seq
	}
	// Each round is killed only after at least one Save returned, so the
	// loop above cannot pass without the child having written.
	if prev < crashKills {
		t.Fatalf("only %d saves in %d rounds", prev, crashKills)
	}
	t.Logf("%d saves across %d kills", prev, crashKills)
}

// crashRound runs one child, kills it a random moment after its first
// completed Save and returns the last sequence number it reported.
func crashRound(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var last atomic.Int64
	first := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue // test framework chatter
			}
			if last.Swap(int64(n)) == 0 {
				close(first)
			}
		}
	}()

	select {
	case <-first:
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
	case <-readDone: // the child exited without saving
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-readDone // EOF once the child is gone; Wait closes the pipe, so read first
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v; stderr:\n%s", err, stderr.String())
	}
	return int(last.Load())
}
