package client_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
)

// TestWatchReobservesAfterRestart: a device that restarts forgets its
// observers. Watch notices a change no notification told it of and
// registers again, so later changes come as notifications, not only from
// its periodic reads.
func TestWatchReobservesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := daemontest.Start(t, daemonBin, daemontest.Options{DataDir: dir})
	d := open(t, first.Endpoint)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	events := d.Events(ctx, client.WatchOptions{Poll: 300 * time.Millisecond})
	if e := <-events; e.Err != nil || e.Status.State != client.StateIdle {
		t.Fatalf("first event %+v", e)
	}
	waitAction := func(action string) {
		t.Helper()
		for e := range events {
			if e.Err == nil && e.Status.Action == action {
				return
			}
		}
		t.Fatalf("watch ended before action %q", action)
	}

	// Restart on the same address, as a re-exec or a service manager does.
	if err := first.Signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	addr := strings.TrimPrefix(first.Endpoint, "coap://")
	second := daemontest.Start(t, daemonBin, daemontest.Options{DataDir: dir, Args: []string{"--coap", addr}})
	if second.Endpoint != first.Endpoint {
		t.Fatalf("restarted on %s, not %s", second.Endpoint, first.Endpoint)
	}

	at := time.Now().Add(time.Hour)
	if _, err := d.Update(ctxT(t), client.Update{Action: client.ActionCheck, At: &at}); err != nil {
		t.Fatal(err)
	}
	waitAction(client.ActionCheck) // seen by a read: nobody observes the new process
	if _, err := d.Update(ctxT(t), client.Update{Action: client.ActionIdle}); err != nil {
		t.Fatal(err)
	}
	waitAction(client.ActionIdle)
	// The device logs a notification once it is acknowledged, which may be
	// just after Watch delivered it.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(second.Stderr(), "msg=notification href=/oc/swu") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted device sent no notification: Watch did not observe it again\n%s", second.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
