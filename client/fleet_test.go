package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/agent"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// fakeSteps are a device's check, fetch and install for rollout tests: the
// repository always offers newest; failAt makes one step fail with result;
// hang makes the install wait until the agent stops it.
type fakeSteps struct {
	newest string
	failAt string // "", "check", "fetch" or "install"
	result swu.Result
	hang   bool
}

func (f *fakeSteps) target() step.Target {
	return step.Target{Version: f.newest, Name: "m/" + f.newest + "/fw.bin", Length: 1000, Counter: 2}
}

func (f *fakeSteps) fail(s string) error {
	if f.failAt != s {
		return nil
	}
	return &step.Error{Result: f.result, Detail: fmt.Sprintf("test device fails its %s", s)}
}

func (f *fakeSteps) Check(_ context.Context, req step.CheckRequest) (step.Target, bool, error) {
	if err := f.fail("check"); err != nil {
		return step.Target{}, false, err
	}
	return f.target(), req.InstalledVersion != f.newest, nil
}

func (f *fakeSteps) Fetch(_ context.Context, _ step.CheckRequest, _ step.Target, progress step.ProgressFunc) (step.Staged, error) {
	progress(500, 1000)
	if err := f.fail("fetch"); err != nil {
		return step.Staged{}, err
	}
	progress(1000, 1000)
	return step.Staged{Target: f.target(), Path: "/nonexistent/staged.pkg"}, nil
}

func (f *fakeSteps) Discard() error { return nil }

func (f *fakeSteps) Install(ctx context.Context, _ string, _ step.Target, _ step.ProgressFunc) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.fail("install")
}

func (f *fakeSteps) Confirm(context.Context, step.Target) error { return nil }

// fleetDevice configures one in-process device.
type fleetDevice struct {
	version string // sv at start
	steps   *fakeSteps
}

// startFleet runs one in-process agent per device on loopback and returns
// their endpoints, in order. The agents stop at the end of the test.
func startFleet(t *testing.T, devices []fleetDevice) []string {
	t.Helper()
	eps := make([]string, len(devices))
	for i, dev := range devices {
		ready := make(chan []string, 1)
		a, err := agent.New(agent.Config{
			DataDir:  t.TempDir(),
			CoAPAddr: "127.0.0.1:0",
			Device: agent.Device{Name: fmt.Sprintf("dev-%02d", i), Model: "m", SoftwareVersion: dev.version,
				Manufacturer: "ACME", ManufacturingDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			Checker: dev.steps, Fetcher: dev.steps, Installer: dev.steps,
			Ready: func(e []string) { ready <- e },
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent %d: %v", i, err)
			}
		})
		select {
		case e := <-ready:
			eps[i] = e[0]
		case err := <-done:
			t.Fatalf("agent %d: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("agent %d not ready", i)
		}
	}
	return eps
}
