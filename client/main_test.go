package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/daemontest"
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
	if err := daemontest.Build("../cmd/ocfupdated", daemonBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
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

type daemon = daemontest.Daemon

// startDaemon runs ocfupdated on a fresh data dir with an ephemeral
// loopback port, open to plain CoAP (--insecure-open-acl: these tests are
// about the update logic), and waits for its endpoint.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return daemontest.Start(t, daemonBin, daemontest.Options{DataDir: t.TempDir(),
		Args: append([]string{"--fetch-retries", "0"}, args...)})
}

// startSecureDaemon runs ocfupdated with its secure defaults and CoAPs on
// an ephemeral loopback port (args must give --creds), and waits for both
// endpoints.
func startSecureDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return daemontest.Start(t, daemonBin, daemontest.Options{DataDir: t.TempDir(), Mode: daemontest.Secure,
		Args: append([]string{"--fetch-retries", "0"}, args...)})
}

// ctxT is a context that bounds a test step; a guard against hangs, not a
// timing assertion.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
