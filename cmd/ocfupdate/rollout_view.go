package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ocfupdate/ocfupdate/client"
)

// rolloutView turns rollout events into the live view: a line per wave, per
// finished device and for a halt, and on a terminal a row per device at
// work with its progress bar plus a tally.
type rolloutView struct {
	v     *liveView
	waves int

	mu      sync.Mutex
	wave    int
	started map[string]bool
	counts  client.Counts
	running int
}

func newRolloutView(w io.Writer, tty bool) *rolloutView {
	return &rolloutView{v: newLiveView(w, tty), started: map[string]bool{}}
}

// planLine introduces the rollout.
func planLine(rep *client.Report) string {
	sizes := make([]string, len(rep.Waves))
	for i, w := range rep.Waves {
		sizes[i] = fmt.Sprint(w.Devices)
	}
	version := rep.Version
	if version == "" {
		version = "learnt from the first device that succeeds"
	}
	return fmt.Sprintf("rollout of %s (version %s) to %d device(s): waves %s, concurrency %d, max failures %s (%d tolerated)",
		rep.PURL, version, len(rep.Devices)-rep.Counts.Skipped, strings.Join(sizes, "+"), rep.Concurrency, rep.MaxFailures, rep.FailureLimit)
}

func (r *rolloutView) event(e client.RolloutEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case client.EventPlan:
		r.waves = len(e.Plan.Waves)
		r.v.println(planLine(e.Plan))
		for _, d := range e.Plan.Devices {
			if d.Outcome == client.OutcomeSkipped {
				r.v.println("  " + outcomeLine(d))
			}
		}
	case client.EventWave:
		r.wave = e.Wave
		r.v.println(fmt.Sprintf("wave %d/%d: %d device(s)", e.Wave, r.waves, e.Devices))
	case client.EventHalt:
		r.v.println("HALTED: " + e.Reason)
	case client.EventDevice:
		d := e.Device
		if d.Outcome == "" {
			if !r.started[d.Endpoint] {
				r.started[d.Endpoint] = true
				r.running++
			}
			s := client.Status{State: "connecting", Action: client.ActionIdle}
			if e.Status != nil {
				s = *e.Status
			}
			r.v.setRow(d.Endpoint, deviceRow(d.Name, d.Endpoint, s, nil))
		} else {
			if r.started[d.Endpoint] {
				r.running--
			}
			r.counts.Succeeded, r.counts.Failed = r.counts.Succeeded+b2i(d.Outcome == client.OutcomeSucceeded), r.counts.Failed+b2i(d.Outcome == client.OutcomeFailed)
			r.counts.Skipped += b2i(d.Outcome == client.OutcomeSkipped)
			r.counts.Cancelled += b2i(d.Outcome == client.OutcomeCancelled)
			r.v.removeRow(d.Endpoint)
			r.v.println("  " + outcomeLine(d))
		}
		r.v.setRow("\x00tally", fmt.Sprintf("wave %d/%d · %d running · %d succeeded · %d failed · %d skipped",
			r.wave, r.waves, r.running, r.counts.Succeeded, r.counts.Failed, r.counts.Skipped))
	}
}

// finish removes the rows: the summary follows.
func (r *rolloutView) finish() {
	r.v.removeRow("\x00tally")
	r.v.close()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// outcomeLine is one finished device.
func outcomeLine(d client.DeviceReport) string {
	l := fmt.Sprintf("%-9s %s", strings.ToUpper(string(d.Outcome)), d.Endpoint)
	if d.Name != "" {
		l += " (" + d.Name + ")"
	}
	if d.Version != "" && d.FromVersion != "" && d.Version != d.FromVersion {
		l += fmt.Sprintf(" %s -> %s", d.FromVersion, d.Version)
	}
	if d.Seconds > 0 {
		l += fmt.Sprintf(" in %.2fs", d.Seconds)
	}
	if d.Result != nil && d.Outcome == client.OutcomeFailed {
		l += fmt.Sprintf(": result %d (%s)", *d.Result, client.ResultText(*d.Result))
	}
	if why := firstOf(d.Error, d.Detail); why != "" && d.Outcome != client.OutcomeSucceeded {
		l += ": " + oneLine(why)
	}
	return l
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// reportTable writes the rollout's summary: every device, then the tally.
func reportTable(w io.Writer, rep *client.Report) {
	fmt.Fprintln(w, "ENDPOINT\tNAME\tWAVE\tOUTCOME\tFROM\tTO\tSECONDS\tRESULT\tDETAIL")
	for _, d := range rep.Devices {
		result, secs := "-", "-"
		if d.Result != nil {
			result = fmt.Sprint(*d.Result)
		}
		if d.Seconds > 0 {
			secs = fmt.Sprintf("%.2f", d.Seconds)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Endpoint, dash(d.Name), d.Wave, d.Outcome,
			dash(d.FromVersion), dash(d.Version), secs, result, oneLine(firstOf(d.Error, d.Detail)))
	}
	c := rep.Counts
	fmt.Fprintf(w, "\nsucceeded %d, failed %d, skipped %d, not started %d, cancelled %d in %.1fs\n",
		c.Succeeded, c.Failed, c.Skipped, c.NotStarted, c.Cancelled, rep.Finished.Sub(rep.Started).Seconds())
	if rep.DryRun {
		fmt.Fprintln(w, "dry run: the devices were only read; nothing was changed")
	}
	if rep.Halted {
		fmt.Fprintf(w, "halted: %s\n", rep.HaltReason)
	}
	if rep.Cancelled {
		fmt.Fprintln(w, "interrupted: devices not started were left as they are")
	}
}
