package client_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

const testPURL = "https://repo.example/fleet"

var fastWatch = client.WatchOptions{Poll: 50 * time.Millisecond, RequestTimeout: 2 * time.Second}

// newFleet makes n devices on 1.0.0 offered 1.1.0; mod adjusts some.
func newFleet(n int, mod func(i int, d *fleetDevice)) []fleetDevice {
	devs := make([]fleetDevice, n)
	for i := range devs {
		devs[i] = fleetDevice{version: "1.0.0", steps: &fakeSteps{newest: "1.1.0"}}
		if mod != nil {
			mod(i, &devs[i])
		}
	}
	return devs
}

// TestRolloutHalts: 24 devices, one already on the target, four failing at
// various steps; at most 2 failures tolerated. With concurrency 1 the order
// is fixed, so every device's outcome is known.
func TestRolloutHalts(t *testing.T) {
	devs := newFleet(24, func(i int, d *fleetDevice) {
		switch i {
		case 2:
			d.version = "1.1.0"
		case 3:
			d.steps.failAt, d.steps.result = "install", swu.ResultUpdateFailed
		case 5:
			d.steps.failAt, d.steps.result = "fetch", swu.ResultValidation
		case 7:
			d.steps.failAt, d.steps.result = "check", 404
		case 9:
			d.steps.failAt, d.steps.result = "install", swu.ResultNoFlash
		}
	})
	eps := startFleet(t, devs)
	var mu sync.Mutex
	var waves []int
	var halts []string
	rep, err := client.Rollout(ctxT(t), client.RolloutConfig{
		PURL: testPURL, Version: "1.1.0", Concurrency: 1,
		Waves:       []client.WaveSize{{N: 1}, {N: 25, Percent: true}, {N: 50, Percent: true}, {N: 100, Percent: true}},
		MaxFailures: client.Threshold{N: 2},
		Watch:       fastWatch,
		OnEvent: func(e client.RolloutEvent) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case client.EventWave:
				waves = append(waves, e.Devices)
			case client.EventHalt:
				halts = append(halts, e.Reason)
			}
		},
	}, eps)
	if err != nil {
		t.Fatal(err)
	}
	// 23 devices to update: waves of 1, up to ceil(25%)=6, up to 12, rest.
	if got := []int{rep.Waves[0].Devices, rep.Waves[1].Devices, rep.Waves[2].Devices, rep.Waves[3].Devices}; !slices.Equal(got, []int{1, 5, 6, 11}) {
		t.Errorf("wave sizes %v", got)
	}
	if !slices.Equal(waves, []int{1, 5, 6}) {
		t.Errorf("waves started %v, want the first three (the halt comes in the third)", waves)
	}
	if !rep.Halted || len(halts) != 1 || !strings.Contains(rep.HaltReason, "3 device(s) failed, more than the 2 tolerated") ||
		!strings.Contains(rep.HaltReason, eps[7]) {
		t.Errorf("halted %v, reason %q, events %q", rep.Halted, rep.HaltReason, halts)
	}
	want := map[int]struct {
		outcome client.Outcome
		wave    int
		result  int
	}{
		0: {client.OutcomeSucceeded, 1, 1}, 1: {client.OutcomeSucceeded, 2, 1}, 2: {client.OutcomeSkipped, 0, -1},
		3: {client.OutcomeFailed, 2, 8}, 4: {client.OutcomeSucceeded, 2, 1}, 5: {client.OutcomeFailed, 2, 5},
		6: {client.OutcomeSucceeded, 2, 1}, 7: {client.OutcomeFailed, 3, 404},
	}
	for i, d := range rep.Devices {
		w, ok := want[i]
		if !ok {
			w.outcome, w.wave, w.result = client.OutcomeNotStarted, 3, -1
			if i >= 13 {
				w.wave = 4
			}
		}
		if d.Endpoint != eps[i] || d.Outcome != w.outcome || d.Wave != w.wave {
			t.Errorf("device %d: %s wave %d, want %s wave %d (%+v)", i, d.Outcome, d.Wave, w.outcome, w.wave, d)
		}
		if w.result >= 0 && (d.Result == nil || *d.Result != w.result) {
			t.Errorf("device %d: result %v, want %d", i, d.Result, w.result)
		}
		started := d.Started != nil && d.Finished != nil && !d.Finished.Before(*d.Started)
		if started != (w.outcome == client.OutcomeSucceeded || w.outcome == client.OutcomeFailed) {
			t.Errorf("device %d (%s): started %v finished %v", i, d.Outcome, d.Started, d.Finished)
		}
		switch d.Outcome {
		case client.OutcomeSucceeded:
			if d.FromVersion != "1.0.0" || d.Version != "1.1.0" || d.Detail != "updated to version 1.1.0" {
				t.Errorf("device %d: %+v", i, d)
			}
		case client.OutcomeFailed:
			if !strings.Contains(d.Detail, "test device fails its") {
				t.Errorf("device %d: detail %q", i, d.Detail)
			}
		case client.OutcomeSkipped:
			if d.Detail != "already on version 1.1.0" {
				t.Errorf("device %d: detail %q", i, d.Detail)
			}
		}
	}
	if c := rep.Counts; c != (client.Counts{Succeeded: 4, Failed: 3, Skipped: 1, NotStarted: 16}) {
		t.Errorf("counts %+v", c)
	}
	if rep.Complete() || rep.Cancelled || rep.FailureLimit != 2 || rep.VersionSource != "given" {
		t.Errorf("report %+v", rep)
	}
}

// TestRolloutConcurrentLearnsVersion: no version given, 32 at once, 10%
// tolerated: the version is learnt from the first success, failures stay
// under the limit and everything else succeeds.
func TestRolloutConcurrentLearnsVersion(t *testing.T) {
	devs := newFleet(20, func(i int, d *fleetDevice) {
		if i == 4 {
			d.steps.failAt, d.steps.result = "install", swu.ResultUpdateFailed
		}
	})
	eps := startFleet(t, devs)
	rep, err := client.Rollout(ctxT(t), client.RolloutConfig{
		PURL: testPURL, Concurrency: 32, Via: client.ViaPstat,
		MaxFailures: client.Threshold{N: 10, Percent: true}, Watch: fastWatch,
	}, eps)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Halted || rep.Version != "1.1.0" || rep.VersionSource != "learnt" || rep.FailureLimit != 2 {
		t.Errorf("report %+v", rep)
	}
	if c := rep.Counts; c != (client.Counts{Succeeded: 19, Failed: 1}) {
		t.Errorf("counts %+v", c)
	}
	if rep.Devices[4].Outcome != client.OutcomeFailed {
		t.Errorf("device 4: %+v", rep.Devices[4])
	}
}

// TestRolloutInterrupted: cancelling the context (Ctrl-C) while a device
// installs: it is reported cancelled, the rest not started.
func TestRolloutInterrupted(t *testing.T) {
	devs := newFleet(6, func(i int, d *fleetDevice) { d.steps.hang = i == 2 })
	eps := startFleet(t, devs)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	rep, err := client.Rollout(ctx, client.RolloutConfig{
		PURL: testPURL, Version: "1.1.0", Concurrency: 1, Watch: fastWatch,
		OnEvent: func(e client.RolloutEvent) {
			if e.Kind == client.EventDevice && e.Device.Endpoint == eps[2] && e.Status != nil && e.Status.State == client.StateUpgrading {
				cancel()
			}
		},
	}, eps)
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Outcome
	for _, d := range rep.Devices {
		got = append(got, d.Outcome)
	}
	want := []client.Outcome{client.OutcomeSucceeded, client.OutcomeSucceeded, client.OutcomeCancelled,
		client.OutcomeNotStarted, client.OutcomeNotStarted, client.OutcomeNotStarted}
	if !slices.Equal(got, want) || !rep.Cancelled || rep.Halted {
		t.Errorf("outcomes %v (cancelled %v), want %v", got, rep.Cancelled, want)
	}
	if d := rep.Devices[2]; d.State != client.StateUpgrading || !strings.Contains(d.Detail, "interrupted") {
		t.Errorf("cancelled device: %+v", d)
	}
}

// TestPlanRollout: a dry run reads devices but changes none.
func TestPlanRollout(t *testing.T) {
	devs := newFleet(5, func(i int, d *fleetDevice) {
		if i == 1 {
			d.version = "1.1.0"
		}
	})
	eps := startFleet(t, devs)
	eps = append(eps, daemontest.DeadEndpoint(t))
	rep, err := client.PlanRollout(ctxT(t), client.RolloutConfig{
		PURL: testPURL, Version: "1.1.0", Waves: []client.WaveSize{{N: 1}, {N: 100, Percent: true}},
		Watch: client.WatchOptions{RequestTimeout: 2 * time.Second},
	}, eps)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Devices {
		got = append(got, fmt.Sprintf("%s/%d", d.Outcome, d.Wave))
	}
	want := []string{"not-started/1", "skipped/0", "not-started/2", "not-started/2", "not-started/2", "not-started/2"}
	if !slices.Equal(got, want) || !rep.DryRun || rep.Complete() || rep.Devices[5].Error == "" {
		t.Errorf("plan %v, want %v; %+v", got, want, rep)
	}
	for _, ep := range eps[:5] {
		d := open(t, ep)
		s, err := d.Status(ctxT(t))
		if err != nil || s.PURL != "" || s.State != "idle" {
			t.Errorf("%s after a dry run: %+v %v", ep, s, err)
		}
	}
}

func TestPlanWaves(t *testing.T) {
	devs := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	sizes := func(s string) []client.WaveSize {
		w, err := client.ParseWaves(s)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tt := range []struct {
		waves string
		n     int
		want  []int
	}{
		{"1,10%,50%,100%", 200, []int{1, 19, 80, 100}},
		{"1,10%,50%,100%", 5, []int{1, 2, 2}}, // 10% of 5 rounds up to the canary: dropped
		{"1,10%,50%,100%", 1, []int{1}},
		{"2,5", 10, []int{2, 8}}, // the last wave takes the rest
		{"100%", 3, []int{3}},
		{"50%,1", 4, []int{2, 2}},
	} {
		var got []int
		total := 0
		for _, w := range client.PlanWaves(devs(tt.n), sizes(tt.waves)) {
			got = append(got, len(w))
			if w[0] != fmt.Sprint(total) {
				t.Errorf("%s over %d: wave starts at %s, want %d", tt.waves, tt.n, w[0], total)
			}
			total += len(w)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s over %d: %v, want %v", tt.waves, tt.n, got, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "1,,2", "101%", "-1", "x%", "1%%"} {
		if _, err := client.ParseWaves(bad); err == nil {
			t.Errorf("ParseWaves(%q) accepted", bad)
		}
	}
}

func TestThreshold(t *testing.T) {
	for _, tt := range []struct {
		in    string
		total int
		limit int
	}{
		{"0", 10, 0}, {"3", 10, 3}, {"10%", 200, 20}, {"10%", 5, 0}, {"100%", 7, 7}, {"0%", 7, 0},
	} {
		th, err := client.ParseThreshold(tt.in)
		if err != nil || th.Limit(tt.total) != tt.limit || th.String() != tt.in {
			t.Errorf("%s of %d: limit %d, %v; want %d", tt.in, tt.total, th.Limit(tt.total), err, tt.limit)
		}
	}
	for _, bad := range []string{"", "-1", "101%", "a", "5 %"} {
		if _, err := client.ParseThreshold(bad); err == nil {
			t.Errorf("ParseThreshold(%q) accepted", bad)
		}
	}
}
