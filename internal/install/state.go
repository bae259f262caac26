package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/flock"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// File names inside an installer's directory.
const (
	stateName = "state.json"
	lockName  = ".lock"
)

// stateFormat is the version of the state file layout.
const stateFormat = 1

// phase is how far a pending install got. Persisted as these strings; an
// installer finding one at Confirm knows exactly what is left to do.
type phase string

const (
	phaseUnpacking   phase = "unpacking"    // slots: writing the inactive slot; current untouched
	phaseSwitching   phase = "switching"    // slots: slot complete; current may already point to it
	phaseInstalling  phase = "installing"   // exec: the install command is (or was) running
	phaseInstalled   phase = "installed"    // exec: the command succeeded; awaiting confirmation
	phaseRollingBack phase = "rolling-back" // the new version failed; going back to the active one
)

// outcome of the last install, so that Confirm answers the same way however
// often it is called.
type outcome string

const (
	outcomeConfirmed outcome = "confirmed"
	outcomeFailed    outcome = "failed"
)

// installed is a confirmed version; Slot is empty for exec installers.
type installed struct {
	Slot    string `json:"slot,omitempty"`
	Version string `json:"version"`
}

// pending is an install that has started but is neither confirmed nor
// rolled back.
type pending struct {
	Slot     string `json:"slot,omitempty"`
	Version  string `json:"version"`
	Target   string `json:"target,omitempty"`
	Phase    phase  `json:"phase"`
	Exec     string `json:"exec,omitempty"`     // slots: manifest exec, relative to the slot
	Attempts int    `json:"attempts,omitempty"` // health checks started
	// slots: starts of the new version counted by Launch and by Install's
	// restart; a program that dies before its health check never counts an
	// attempt, so it is rolled back after HealthCheck.MaxAttempts starts.
	Starts int `json:"starts,omitempty"`
	// Set when entering phaseRollingBack: why, and the result to report.
	Detail string     `json:"detail,omitempty"`
	Result swu.Result `json:"result,omitempty"`
	// exec: the rollback command has been started (never run twice: it may
	// reboot the device).
	RollbackStarted bool `json:"rollback_started,omitempty"`
}

// last is the outcome of the most recent install.
type last struct {
	Version string     `json:"version"`
	Outcome outcome    `json:"outcome"`
	Result  swu.Result `json:"result"`
	Detail  string     `json:"detail,omitempty"`
	At      time.Time  `json:"at"`
}

// record is the content of state.json.
type record struct {
	Format  int        `json:"format"`
	Active  *installed `json:"active,omitempty"` // nil: the factory software
	Pending *pending   `json:"pending,omitempty"`
	Last    *last      `json:"last,omitempty"`
}

func (r *record) activeSlot() string {
	if r.Active == nil {
		return ""
	}
	return r.Active.Slot
}

// activeVersion is the confirmed version, or factory before the first install.
func (r *record) activeVersion(factory string) string {
	if r.Active == nil {
		return factory
	}
	return r.Active.Version
}

// stateStore keeps record in dir/state.json and serialises installers using
// dir, within this process (mu) and across processes (flock).
type stateStore struct {
	dir string
	mu  sync.Mutex
}

// lock takes the installer's lock without waiting: a second agent on the
// same directory is a configuration error to report, not to queue behind.
// The lock file descriptor is close-on-exec, so a restart by exec drops it.
func (s *stateStore) lock() (unlock func(), err error) {
	s.mu.Lock()
	l, err := flock.TryLock(filepath.Join(s.dir, lockName))
	if err != nil {
		s.mu.Unlock()
		if errors.Is(err, flock.ErrLocked) {
			return nil, fmt.Errorf("lock %s: %w", s.dir, ErrBusy)
		}
		return nil, err
	}
	return func() {
		_ = l.Unlock()
		s.mu.Unlock()
	}, nil
}

// load reads the record; a missing file is the factory state.
func (s *stateStore) load() (record, error) {
	var r record
	b, err := os.ReadFile(filepath.Join(s.dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return record{Format: stateFormat}, nil
	}
	if err != nil {
		return r, fmt.Errorf("read install state: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("decode install state %s: %w", filepath.Join(s.dir, stateName), err)
	}
	if r.Format != stateFormat {
		return r, fmt.Errorf("install state %s has format %d, want %d",
			filepath.Join(s.dir, stateName), r.Format, stateFormat)
	}
	return r, nil
}

// save writes the record atomically.
func (s *stateStore) save(r *record) error {
	r.Format = stateFormat
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install state: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, stateName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save install state: %w", err)
	}
	return nil
}

// removeTemps deletes state file temporaries a crash left behind; call with
// the lock held.
func (s *stateStore) removeTemps() {
	stale, err := filepath.Glob(filepath.Join(s.dir, "."+stateName+".tmp*"))
	if err != nil {
		return
	}
	for _, n := range stale {
		_ = os.Remove(n)
	}
}

// finish ends the pending install as failed: it records the outcome, clears
// the pending install and returns the *step.Error to report. The caller has
// already put the device back on the active version.
func (s *stateStore) finish(r *record, res swu.Result, cause error, detail string) error {
	v := ""
	if r.Pending != nil {
		v = r.Pending.Version
	}
	r.Pending = nil
	r.Last = &last{Version: v, Outcome: outcomeFailed, Result: res, Detail: detail, At: time.Now().UTC()}
	if err := s.save(r); err != nil {
		// The device is back on the active version whatever the disk says;
		// the next Confirm finds the pending install and ends it again.
		return &step.Error{Result: res, Detail: detail, Err: errors.Join(cause, err)}
	}
	return &step.Error{Result: res, Detail: detail, Err: cause}
}

// confirm makes the pending install the active version.
func (s *stateStore) confirm(r *record) error {
	p := r.Pending
	r.Active = &installed{Slot: p.Slot, Version: p.Version}
	r.Pending = nil
	r.Last = &last{Version: p.Version, Outcome: outcomeConfirmed, Result: swu.ResultSuccess, At: time.Now().UTC()}
	return s.save(r)
}

// settled answers Confirm when nothing is pending: the recorded outcome for
// t's version, so that a repeated Confirm (the agent crashed before it saved
// the result) gives the same answer.
func settled(r *record, t step.Target, factory string) error {
	if l := r.Last; l != nil && l.Version == t.Version {
		if l.Outcome == outcomeConfirmed {
			return nil
		}
		return &step.Error{Result: l.Result, Detail: l.Detail}
	}
	active := r.activeVersion(factory)
	if active == t.Version {
		return nil
	}
	return failure(swu.ResultUpdateFailed, nil,
		"no install of %s was started or it did not get far; still on %s", t.Version, active)
}

// Status is what an installer's state file says, for the agent to reconcile
// at start-up (a pending install means Confirm must run).
type Status struct {
	Active       string     // confirmed version (sv)
	Pending      string     // version installed but not yet confirmed; "" if none
	PendingPhase string     // how far the pending install got
	LastVersion  string     // version of the last finished install attempt
	LastResult   swu.Result // its result: 1 success, else the failure's
	LastDetail   string
}

func (r *record) status(factory string) Status {
	st := Status{Active: r.activeVersion(factory)}
	if p := r.Pending; p != nil {
		st.Pending, st.PendingPhase = p.Version, string(p.Phase)
	}
	if l := r.Last; l != nil {
		st.LastVersion, st.LastResult, st.LastDetail = l.Version, l.Result, l.Detail
	}
	return st
}
