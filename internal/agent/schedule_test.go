package agent

import (
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/schedule/schedtest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

var t0 = time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)

// TestScheduledAction: a future updatetime runs the action once at that
// time, not before.
func TestScheduledAction(t *testing.T) {
	clock := schedtest.NewClock(t0)
	h := start(t, "", nil, withClock(clock))
	at := t0.Add(2 * time.Hour)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isac", "updatetime": at.Format(time.RFC3339)})
	if s := h.status(); s.Action != "isac" || s.UpdateTime != at.Format(time.RFC3339) {
		t.Errorf("scheduled: %+v", s)
	}
	clock.Advance(time.Hour)
	h.steps.none(t)
	clock.Advance(time.Hour)
	h.steps.expect(t, "check").answer(stepReply{found: false})
	s := waitResult(t, h, 0)
	if s.Action != "idle" {
		t.Errorf("after firing: %+v", s)
	}
	clock.Advance(24 * time.Hour)
	h.steps.none(t)
}

// TestScheduleReplaceAndCancel: a new time replaces the pending one; none
// cancels it.
func TestScheduleReplaceAndCancel(t *testing.T) {
	clock := schedtest.NewClock(t0)
	h := start(t, "", nil, withClock(clock))
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isac", "updatetime": t0.Add(time.Hour).Format(time.RFC3339)})
	later := t0.Add(3 * time.Hour)
	h.mustPost(map[string]any{"updatetime": later.Format(time.RFC3339)})
	clock.Advance(2 * time.Hour)
	h.steps.none(t)
	h.mustPost(map[string]any{"updatetime": "none"})
	clock.Advance(2 * time.Hour)
	h.steps.none(t)
	if s := h.status(); s.Action != "idle" || s.UpdateTime != later.Format(time.RFC3339) {
		t.Errorf("after cancel: %+v", s)
	}
}

// TestScheduleClockJump: the wall clock jumping past the time fires the
// action at the next recheck.
func TestScheduleClockJump(t *testing.T) {
	clock := schedtest.NewClock(t0)
	h := start(t, "", nil, withClock(clock))
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isac", "updatetime": t0.Add(6 * time.Hour).Format(time.RFC3339)})
	clock.Set(t0.Add(7 * time.Hour)) // NTP correction: wall clock jumps
	clock.Advance(time.Minute)       // the scheduler's recheck interval
	h.steps.expect(t, "check").answer(stepReply{found: false})
}

// TestScheduleMissedWhileDown: a schedule whose time passed while the agent
// was stopped runs once at start-up.
func TestScheduleMissedWhileDown(t *testing.T) {
	clock := schedtest.NewClock(t0)
	h := start(t, "", nil, withClock(clock))
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isac", "updatetime": t0.Add(time.Hour).Format(time.RFC3339)})
	h.stop()

	clock.Set(t0.Add(5 * time.Hour))
	steps := newFakeSteps()
	h2 := start(t, h.dir, steps, withClock(clock))
	steps.expect(t, "check").answer(stepReply{found: false})
	waitResult(t, h2, 0)
	h2.stop()

	h3 := start(t, h.dir, nil, withClock(clock))
	h3.steps.none(t) // consumed: not again
	if s := h3.status(); s.Action != string(swu.ActionIdle) {
		t.Errorf("after restart: %+v", s)
	}
}
