package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	endpoint string // coap://127.0.0.1:PORT
	secure   string // coaps://127.0.0.1:PORT, when the daemon serves CoAPs
	stderr   *syncBuilder
	exited   chan error
}

// syncBuilder is a strings.Builder the process writes to while tests read.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon runs ocfupdated on dir with an ephemeral loopback port and
// waits for its "listening" line. These tests are about the update logic,
// not about security: they pass --insecure-open-acl and talk plain CoAP
// (the security tests use startSecureDaemon).
func startDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	return launch(t, dir, false, append([]string{"--insecure-open-acl"}, args...)...)
}

// startSecureDaemon runs ocfupdated with its secure defaults and CoAPs on
// an ephemeral loopback port (args must give --creds), and waits for both
// endpoints.
func startSecureDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	return launch(t, dir, true, append([]string{"--coaps", "127.0.0.1:0"}, args...)...)
}

func launch(t testing.TB, dir string, secure bool, args ...string) *daemon {
	t.Helper()
	args = append([]string{"--data-dir", dir, "--coap", "127.0.0.1:0", "--log-level", "debug"}, args...)
	cmd := exec.Command(daemonBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &syncBuilder{}, exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
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
		<-d.exited
		if t.Failed() {
			t.Logf("ocfupdated stderr:\n%s", d.stderr.String())
		}
	})
	timeout := time.After(15 * time.Second)
	for d.endpoint == "" || (secure && d.secure == "") {
		select {
		case l := <-lines:
			ep, ok := strings.CutPrefix(l, "listening ")
			switch {
			case ok && strings.HasPrefix(ep, "coap://127.0.0.1:"):
				d.endpoint = ep
			case ok && strings.HasPrefix(ep, "coaps://127.0.0.1:"):
				d.secure = ep
			default:
				t.Fatalf("unexpected line %q", l)
			}
		case err := <-d.exited:
			t.Fatalf("ocfupdated exited: %v\n%s", err, d.stderr.String())
		case <-timeout:
			t.Fatal("ocfupdated did not print its endpoints")
		}
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
