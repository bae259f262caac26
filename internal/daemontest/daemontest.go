// Package daemontest runs real ocfupdated processes for end-to-end tests:
// it builds the binary once, starts it on ephemeral loopback ports, waits
// for its "listening" lines and stops it at the end of the test. It also
// has the small pieces such tests share: a Buffer for the output of a
// process or server that the test reads while it runs, and a DeadEndpoint
// where no device answers.
package daemontest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the ocfupdated package at pkg (a path as for go build,
// e.g. "../cmd/ocfupdated") into out.
func Build(pkg, out string) error {
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Daemon is a running ocfupdated process.
type Daemon struct {
	Cmd      *exec.Cmd
	Endpoint string // coap://127.0.0.1:PORT
	Secure   string // coaps://127.0.0.1:PORT, when started in Secure mode
	stderr   Buffer
	exited   chan error
}

// Mode is how much security the daemon starts with.
type Mode int

const (
	// Open adds --insecure-open-acl: tests of the update logic talk plain
	// CoAP to every resource.
	Open Mode = iota
	// Secure keeps the secure defaults and serves CoAPs on an ephemeral
	// port (Args must give --creds); Start waits for both endpoints.
	Secure
	// Defaults adds no security flag at all.
	Defaults
)

// Options choose how the daemon starts.
type Options struct {
	DataDir string
	Mode    Mode
	Args    []string
}

// Start runs bin with o and waits for its endpoints. The process is killed
// at the end of the test; its stderr is logged when the test failed.
func Start(t testing.TB, bin string, o Options) *Daemon {
	t.Helper()
	args := []string{"--data-dir", o.DataDir, "--coap", "127.0.0.1:0", "--log-level", "debug"}
	switch o.Mode {
	case Open:
		args = append(args, "--insecure-open-acl")
	case Secure:
		args = append(args, "--coaps", "127.0.0.1:0")
	}
	args = append(args, o.Args...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Cmd: cmd, exited: make(chan error, 1)}
	cmd.Stderr = &d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-d.exited
		d.exited <- err
		if t.Failed() {
			t.Logf("ocfupdated %v stderr:\n%s", args, d.Stderr())
		}
	})
	timeout := time.After(15 * time.Second)
	for d.Endpoint == "" || (o.Mode == Secure && d.Secure == "") {
		select {
		case l := <-lines:
			ep, ok := strings.CutPrefix(l, "listening ")
			switch {
			case ok && strings.HasPrefix(ep, "coap://"):
				d.Endpoint = ep
			case ok && strings.HasPrefix(ep, "coaps://"):
				d.Secure = ep
			default:
				t.Fatalf("unexpected line %q", l)
			}
		case err := <-d.exited:
			t.Fatalf("ocfupdated exited: %v\n%s", err, d.Stderr())
		case <-timeout:
			t.Fatal("ocfupdated did not print its endpoints")
		}
	}
	return d
}

// Stderr is what the process logged so far.
func (d *Daemon) Stderr() string { return d.stderr.String() }

// Signal sends sig and waits for the process to exit, returning its status.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err // for Cleanup and later calls
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("ocfupdated did not stop on %v", sig)
		return nil
	}
}

// Buffer is a bytes.Buffer that one goroutine (a process's output, a
// server's log) may write while the test reads it. The zero value is empty
// and ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// DeadEndpoint returns a coap:// endpoint on a loopback UDP port that
// nothing listens on (it was free a moment ago): a device that is down.
func DeadEndpoint(t testing.TB) string {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ep := "coap://" + c.LocalAddr().String()
	c.Close()
	return ep
}
