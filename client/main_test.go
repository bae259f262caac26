package client_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// daemonBin is the ocfupdated binary the tests run as real devices, built
// once by TestMain.
var daemonBin string

func TestMain(m *testing.M) {
	if os.Getenv(netnsChildEnv) != "" {
		os.Exit(runNetnsChild())
	}
	dir, err := os.MkdirTemp("", "client-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBin = filepath.Join(dir, "ocfupdated")
	out, err := exec.Command("go", "build", "-o", daemonBin, "../cmd/ocfupdated").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ocfupdated: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// daemon is a running ocfupdated process.
type daemon struct {
	cmd      *exec.Cmd
	endpoint string // coap://
	secure   string // coaps://, when started with credentials
	stderr   *lockedBuilder
	exited   chan error
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs ocfupdated on a fresh data dir with an ephemeral
// loopback port, open to plain CoAP (--insecure-open-acl: these tests are
// about the update logic), and waits for its endpoint.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return launch(t, false, append([]string{"--insecure-open-acl"}, args...)...)
}

// startSecureDaemon runs ocfupdated with its secure defaults and CoAPs on
// an ephemeral loopback port (args must give --creds), and waits for both
// endpoints.
func startSecureDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return launch(t, true, append([]string{"--coaps", "127.0.0.1:0"}, args...)...)
}

func launch(t *testing.T, secure bool, args ...string) *daemon {
	t.Helper()
	args = append([]string{"--data-dir", t.TempDir(), "--coap", "127.0.0.1:0", "--log-level", "debug",
		"--fetch-retries", "0"}, args...)
	cmd := exec.Command(daemonBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &lockedBuilder{}, exited: make(chan error, 1)}
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
			t.Logf("ocfupdated %v stderr:\n%s", args, d.stderr.String())
		}
	})
	timeout := time.After(15 * time.Second)
	for d.endpoint == "" || (secure && d.secure == "") {
		select {
		case l := <-lines:
			ep, ok := strings.CutPrefix(l, "listening ")
			switch {
			case ok && strings.HasPrefix(ep, "coap://"):
				d.endpoint = ep
			case ok && strings.HasPrefix(ep, "coaps://"):
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

// ctxT is a context that bounds a test step; a guard against hangs, not a
// timing assertion.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
