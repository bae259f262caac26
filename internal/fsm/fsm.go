// Package fsm is the software update state machine: a pure function from
// (machine, event) to (machine, effects), driven by a transition table that
// is data. It knows nothing of CoAP, disks or clocks; the agent persists the
// machine it returns, then carries out the effects, then feeds the steps'
// outcomes back in as events.
//
// States are Table 3 of the spec (idle, nsa, svv, sva, upgrading). The
// machine also remembers its Goal: the action being pursued. A check
// (isac) stops at nsa; isvv runs check → download/validate and stops at sva;
// upgrade runs check → download/validate → install and ends in idle with
// result 1. Each intermediate state is entered on its own transition (via
// the Continue effect and event) so it is persisted and notified before the
// next step starts — observers see the sequence of the spec's Figure 2.
//
// Decisions where the spec is silent (also in docs/state-machine.md):
//   - A check runs in the state it started from (idle, or nsa for a re-check).
//   - A new action is refused while the device is busy in a way it cannot
//     merge: isac during svv, anything during upgrading, isac while a
//     validated package waits in sva (upgrade it or cancel with idle).
//     Requests that only change how far a running job goes are merged:
//     upgrade during a check or download raises the goal, isvv during a
//     download lowers it.
//   - swupdateaction idle cancels: a running check or download stops, a
//     staged package is discarded, and the machine returns to idle.
//   - Every new action clears the previous result to 0; the outcome sets it.
//     A completed upgrade is result 1. A check that finds nothing newer is
//     result 0 back in idle; a check that finds a version is result 0 in nsa.
//   - Outcomes of a step that no longer matches the state (a cancelled
//     check reporting late) change nothing.
package fsm

import (
	"errors"
	"fmt"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Machine is the persisted state of the update state machine.
type Machine struct {
	State  swu.State  `json:"state"`
	Goal   swu.Action `json:"goal"` // action being pursued; idle when none
	Result swu.Result `json:"result"`
}

// Initial is the machine of a device that never updated.
var Initial = Machine{State: swu.StateIdle, Goal: swu.ActionIdle, Result: swu.ResultIdle}

// EventKind names an event. Never persisted, but strings for readable logs.
type EventKind string

const (
	EvRequest       EventKind = "request"        // an action asked for (Event.Action)
	EvContinue      EventKind = "continue"       // go on towards the goal (after a Continue effect)
	EvCheckFound    EventKind = "check-found"    // a newer version exists
	EvCheckNone     EventKind = "check-none"     // nothing newer
	EvCheckFailed   EventKind = "check-failed"   // Event.Result says why
	EvFetchDone     EventKind = "fetch-done"     // downloaded and verified
	EvFetchNone     EventKind = "fetch-none"     // isvv without a check: nothing newer to fetch
	EvFetchFailed   EventKind = "fetch-failed"   // Event.Result says why
	EvInstallDone   EventKind = "install-done"   // installed and confirmed
	EvInstallFailed EventKind = "install-failed" // Event.Result says why (rolled back)
	EvBoot          EventKind = "boot"           // agent started with this machine on disk
)

// Event is one input to Next.
type Event struct {
	Kind   EventKind
	Action swu.Action // EvRequest only
	Result swu.Result // the *Failed events only
}

// Effect is work the agent must do after persisting the new machine.
type Effect string

const (
	StartCheck     Effect = "start-check"     // run the availability check
	StartFetch     Effect = "start-fetch"     // download and validate (resuming a partial download)
	StartInstall   Effect = "start-install"   // install the validated package
	ConfirmInstall Effect = "confirm-install" // after a restart in upgrading: health check or roll back
	CancelWork     Effect = "cancel-work"     // stop the running step
	Discard        Effect = "discard"         // delete staged and partial downloads
	SetNV          Effect = "set-nv"          // nv := the version the check found
	ClearNV        Effect = "clear-nv"        // nv := ""
	CommitVersion  Effect = "commit-version"  // sv := nv, lastupdate := now
	Continue       Effect = "continue"        // feed EvContinue back in
)

// ErrRefused is returned (wrapped, with the reason) for a request the
// current state cannot take. The machine is unchanged.
var ErrRefused = errors.New("refused")

// Refusal is the error for a refused request: Reason is a sentence for the
// diagnostic payload.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string        { return "refused: " + r.Reason }
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// Next returns the machine after ev and the effects to carry out, in order.
// A request that cannot be taken returns a *Refusal (errors.Is ErrRefused)
// and m unchanged. A step outcome that does not match the state is stale:
// m unchanged, no effects, no error.
func Next(m Machine, ev Event) (Machine, []Effect, error) {
	if !validState(m.State) || !validGoal(m.Goal) {
		return m, nil, fmt.Errorf("fsm: invalid machine %+v", m)
	}
	if ev.Kind == EvRequest && !validGoal(ev.Action) {
		return m, nil, fmt.Errorf("fsm: invalid action %q", ev.Action)
	}
	r, ok := lookup(m, ev)
	if !ok {
		if ev.Kind == EvRequest {
			return m, nil, &Refusal{Reason: fmt.Sprintf("%s is not possible in state %s", ev.Action, m.State)}
		}
		return m, nil, nil
	}
	if r.refuse != "" {
		return m, nil, &Refusal{Reason: r.refuse}
	}
	n := m
	if r.to != "" {
		n.State = r.to
	}
	switch r.goal {
	case goalKeep:
	case goalClear:
		n.Goal = swu.ActionIdle
	case goalAction:
		n.Goal = ev.Action
	}
	switch r.result {
	case resKeep:
	case resIdle:
		n.Result = swu.ResultIdle
	case resSuccess:
		n.Result = swu.ResultSuccess
	case resEvent:
		n.Result = ev.Result
		if n.Result == swu.ResultIdle || n.Result == swu.ResultSuccess {
			// A failure must say so; a step that forgot is an update failure.
			n.Result = swu.ResultUpdateFailed
		}
	}
	return n, append([]Effect(nil), r.effects...), nil
}

func lookup(m Machine, ev Event) (row, bool) {
	for _, r := range table {
		if r.from != m.State || r.event != ev.Kind {
			continue
		}
		if r.action != "" && r.action != ev.Action {
			continue
		}
		if r.goals != nil && !contains(r.goals, m.Goal) {
			continue
		}
		return r, true
	}
	return row{}, false
}

func contains(list []swu.Action, a swu.Action) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func validState(s swu.State) bool {
	switch s {
	case swu.StateIdle, swu.StateNSA, swu.StateSVV, swu.StateSVA, swu.StateUpgrading:
		return true
	}
	return false
}

func validGoal(a swu.Action) bool {
	switch a {
	case swu.ActionIdle, swu.ActionCheck, swu.ActionFetch, swu.ActionUpgrade:
		return true
	}
	return false
}
