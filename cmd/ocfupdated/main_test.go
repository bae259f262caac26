package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/daemontest"
)

// daemonBin is the ocfupdated binary built once for the end-to-end tests.
var daemonBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ocfupdated-test")
	if err != nil {
		panic(err)
	}
	daemonBin = filepath.Join(dir, "ocfupdated")
	if err := daemontest.Build(".", daemonBin); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type daemon = daemontest.Daemon

// syncBuffer is a buffer a process or server writes while the test reads.
type syncBuffer = daemontest.Buffer

// startDaemon runs ocfupdated on dir with an ephemeral loopback port and
// waits for its "listening" line. These tests are about the update logic,
// not about security: they pass --insecure-open-acl and talk plain CoAP
// (the security tests use startSecureDaemon).
func startDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	return daemontest.Start(t, daemonBin, daemontest.Options{DataDir: dir, Args: args})
}

// startSecureDaemon runs ocfupdated with its secure defaults and CoAPs on
// an ephemeral loopback port (args must give --creds), and waits for both
// endpoints.
func startSecureDaemon(t testing.TB, dir string, args ...string) *daemon {
	t.Helper()
	return daemontest.Start(t, daemonBin, daemontest.Options{DataDir: dir, Mode: daemontest.Secure, Args: args})
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
