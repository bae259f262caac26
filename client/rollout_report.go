package client

import (
	"time"
)

// Outcome is what happened to one device in a rollout. Stable strings: they
// are in the JSON report that scripts read.
type Outcome string

const (
	// OutcomeSucceeded: the device installed the target version (result 1,
	// and sv is the target version).
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeFailed: the device could not be reached or refused the
	// request, the update ended with a failure result, it installed
	// another version than the target, or it did not finish in time.
	OutcomeFailed Outcome = "failed"
	// OutcomeSkipped: the device already runs the target version, or found
	// nothing newer in the repository.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeNotStarted: the rollout halted or was interrupted (or was a
	// dry run) before the device's turn.
	OutcomeNotStarted Outcome = "not-started"
	// OutcomeCancelled: the rollout was interrupted while the device was
	// updating. The device goes on by itself; its final state is unknown.
	OutcomeCancelled Outcome = "cancelled"
)

// DeviceReport is one device's line in a rollout report.
type DeviceReport struct {
	Endpoint    string     `json:"endpoint"`
	ID          string     `json:"id,omitempty"`
	Name        string     `json:"name,omitempty"`
	Model       string     `json:"model,omitempty"`
	Wave        int        `json:"wave"` // 1-based; 0 when skipped before planning
	Outcome     Outcome    `json:"outcome"`
	FromVersion string     `json:"from_version,omitempty"` // sv before
	Version     string     `json:"version,omitempty"`      // sv after
	Started     *time.Time `json:"started,omitempty"`
	Finished    *time.Time `json:"finished,omitempty"`
	Seconds     float64    `json:"seconds,omitempty"` // Finished - Started
	Result      *int       `json:"result,omitempty"`  // final swupdateresult
	State       string     `json:"state,omitempty"`   // last swupdatestate seen
	Detail      string     `json:"detail,omitempty"`  // the device's x.org.ocfupdate.detail, or why the rollout gave up
	Error       string     `json:"error,omitempty"`   // an error talking to the device, with its diagnostic
}

// WaveReport is one wave of a rollout.
type WaveReport struct {
	Wave     int        `json:"wave"`
	Devices  int        `json:"devices"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// Counts tallies the outcomes.
type Counts struct {
	Succeeded  int `json:"succeeded"`
	Failed     int `json:"failed"`
	Skipped    int `json:"skipped"`
	NotStarted int `json:"not_started"`
	Cancelled  int `json:"cancelled"`
}

func (c *Counts) add(o Outcome) {
	switch o {
	case OutcomeSucceeded:
		c.Succeeded++
	case OutcomeFailed:
		c.Failed++
	case OutcomeSkipped:
		c.Skipped++
	case OutcomeNotStarted:
		c.NotStarted++
	case OutcomeCancelled:
		c.Cancelled++
	}
}

// Report is the outcome of a rollout (or, with DryRun, its plan).
type Report struct {
	PURL string `json:"purl"`
	// Version is the target version: given, or learnt from the first
	// device that succeeded ("" if none did). VersionSource says which.
	Version       string         `json:"version"`
	VersionSource string         `json:"version_source"` // "given", "learnt" or ""
	Via           string         `json:"via"`
	At            *time.Time     `json:"at,omitempty"`
	Concurrency   int            `json:"concurrency"`
	MaxFailures   string         `json:"max_failures"`
	FailureLimit  int            `json:"failure_limit"` // failures tolerated; one more halts
	DryRun        bool           `json:"dry_run"`
	Started       time.Time      `json:"started"`
	Finished      time.Time      `json:"finished"`
	Halted        bool           `json:"halted"`
	HaltReason    string         `json:"halt_reason,omitempty"`
	Cancelled     bool           `json:"cancelled"` // interrupted (Ctrl-C) before the end
	Counts        Counts         `json:"counts"`
	Waves         []WaveReport   `json:"waves"`
	Devices       []DeviceReport `json:"devices"`
}

// Complete reports whether every device ended on the target version or was
// skipped: nothing failed, nothing was left out.
func (r *Report) Complete() bool {
	return !r.DryRun && !r.Halted && !r.Cancelled && r.Counts.Failed == 0 &&
		r.Counts.NotStarted == 0 && r.Counts.Cancelled == 0
}

func (r *Report) recount() {
	r.Counts = Counts{}
	for _, d := range r.Devices {
		r.Counts.add(d.Outcome)
	}
}
