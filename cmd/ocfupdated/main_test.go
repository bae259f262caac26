package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonBin is the ocfupdated binary built once for the end-to-end tests.
var daemonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocfupdated-test")
	if err != nil {
		panic(err)
	}
	daemonBin = filepath.Join(dir, "ocfupdated")
	out, err := exec.Command("go", "build", "-o", daemonBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running ocfupdated process.
type daemon struct {
	cmd      *exec.Cmd
	endpoint string
	stderr   *strings.Builder
	exited   chan error
}

// startDaemon runs ocfupdated on dir with an ephemeral loopback port and
// waits for its "listening" line.
func startDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	args = append([]string{"--data-dir", dir, "--coap", "127.0.0.1:0", "--log-level", "debug"}, args...)
	cmd := exec.Command(daemonBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &strings.Builder{}, exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
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
		<-d.exited
		if t.Failed() {
			t.Logf("ocfupdated stderr:\n%s", d.stderr.String())
		}
	})
	select {
	case l := <-lines:
		ep, ok := strings.CutPrefix(l, "listening ")
		if !ok || !strings.HasPrefix(ep, "coap://127.0.0.1:") {
			t.Fatalf("first line %q", l)
		}
		d.endpoint = ep
	case err := <-d.exited:
		t.Fatalf("ocfupdated exited: %v\n%s", err, d.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("ocfupdated did not print its endpoint")
	}
	return d
}

// signal sends sig and waits for the exit status.
func (d *daemon) signal(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.exited <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("ocfupdated did not stop on %v", sig)
		return nil
	}
}

func ctxT(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// coapClient finds libcoap's coap-client-notls, skipping outside CI when it
// is not installed (CI installs it, and there its absence is a failure).
func coapClient(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("coap-client-notls")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("coap-client-notls not found; .ci/run installs libcoap3-bin")
		}
		t.Skip("coap-client-notls not installed (apt-get install libcoap3-bin)")
	}
	return p
}

var _ = io.EOF
