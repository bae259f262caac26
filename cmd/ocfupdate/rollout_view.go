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
// work with its steps and progress bar, plus a tally below them.
type rolloutView struct {
	v     *liveView
	waves int

	mu      sync.Mutex
	wave    int
	started map[string]*stepTrail
	counts  client.Counts
	running int
}

func newRolloutView(w io.Writer, tty bool) *rolloutView {
	return &rolloutView{v: newLiveView(w, tty), started: map[string]*stepTrail{}}
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
			t := r.started[d.Endpoint]
			if t == nil {
				t = newStepTrail(rowKey(d))
				r.started[d.Endpoint] = t
				r.running++
			}
			if e.Status != nil {
				t.observe(*e.Status)
			}
			r.v.setRow(t.key, t.row(firstOf(d.Name, "-"), d.Endpoint))
		} else {
			if t := r.started[d.Endpoint]; t != nil {
				r.running--
				r.v.removeRow(t.key)
			}
			r.counts.Succeeded, r.counts.Failed = r.counts.Succeeded+b2i(d.Outcome == client.OutcomeSucceeded), r.counts.Failed+b2i(d.Outcome == client.OutcomeFailed)
			r.counts.Skipped += b2i(d.Outcome == client.OutcomeSkipped)
			r.counts.Cancelled += b2i(d.Outcome == client.OutcomeCancelled)
			r.v.println("  " + outcomeLine(d))
		}
		r.v.setFooter(fmt.Sprintf("wave %d/%d · %d running · %d succeeded · %d failed · %d skipped",
			r.wave, r.waves, r.running, r.counts.Succeeded, r.counts.Failed, r.counts.Skipped))
	}
}

// finish removes the tally: the summary follows.
func (r *rolloutView) finish() {
	r.v.setFooter("")
	r.v.close()
}

// rowKey orders a device's live row by name, then endpoint.
func rowKey(d client.DeviceReport) string { return d.Name + "\x00" + d.Endpoint }

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

// The steps of an update as the rollout view draws them. A device's state
// tells which it is at: idle with an action is checking the repository,
// nsa has found the version, svv downloads (verifying as the bytes come,
// the final checks after the last one), sva has verified the package, and
// upgrading installs it. In memory only, so plain ints.
const (
	stepCheck = iota
	stepDownload
	stepVerify
	stepInstall
	stepDone
)

var stepNames = [...]string{"check", "download", "verify", "install"}

// stepTrail is what a rollout view knows of one device's update: the step
// it is at and how far its download got. It keeps steps that went by
// between two notifications ticked, so that a step too quick to be seen
// (checking and installing take milliseconds on loopback) still shows as
// done rather than as never happened.
type stepTrail struct {
	key    string // of the device's row in the live view
	at     int    // the step in progress; -1 until the device reports one
	pct    int    // download progress, 0–100
	failed bool   // the update ended with a failure at step at
}

func newStepTrail(key string) *stepTrail { return &stepTrail{key: key, at: -1} }

// observe moves the trail to the step s shows.
func (t *stepTrail) observe(s client.Status) {
	switch s.State {
	case client.StateIdle:
		switch {
		case s.Action != client.ActionIdle:
			t.at = stepCheck
		case t.at < 0:
			// The device as it was before the rollout asked it anything:
			// its result belongs to an earlier update.
		case s.Failed():
			t.failed = true
		default:
			t.at = stepDone
		}
	case client.StateNSA:
		t.at = stepDownload
	case client.StateSVV:
		// A finished download clears its progress before the state moves
		// on, so a download that reached 100% is being verified.
		if p := s.Percent(); p >= 0 {
			t.pct = p
		}
		t.at = stepDownload
		if t.pct == 100 {
			t.at = stepVerify
		}
	case client.StateSVA, client.StateUpgrading:
		t.at = stepInstall
	}
}

// row draws the trail: ✓ for steps done, ▶ for the one in progress (✗ if
// it failed), · for those to come, and a bar for the download. Up to the
// last step it takes 78 columns, so that it fits an 80-column terminal;
// the address after it may be cut there (the live view cuts rows to the
// terminal's width).
func (t *stepTrail) row(name, endpoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s", trunc(name, 12))
	for i, n := range stepNames {
		mark := "·"
		switch {
		case i < t.at:
			mark = "✓"
		case i == t.at && t.failed:
			mark = "✗"
		case i == t.at:
			mark = "▶"
		}
		fmt.Fprintf(&b, " %s %s ", mark, n)
		if i == stepDownload {
			pct := t.pct
			if t.at > stepDownload {
				pct = 100
			}
			fmt.Fprintf(&b, "%s %3d%% ", bar(pct, 16), pct)
		}
	}
	// The scheme is the same for every device of a rollout, and the
	// header line says it; the address is what tells devices apart.
	_, addr, ok := strings.Cut(endpoint, "://")
	if !ok {
		addr = endpoint
	}
	b.WriteString(" " + addr)
	if t.at < 0 {
		b.WriteString(" connecting")
	}
	return b.String()
}
