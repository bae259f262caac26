package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fsm"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Apply carries out a validated UPDATE of the software update resource
// (swu.Controller). It is all-or-nothing: a refusal changes nothing.
func (a *Agent) Apply(ctx context.Context, u swu.Update) error {
	return a.do(ctx, func(ctx context.Context) error { return a.applyUpdate(ctx, u) })
}

// Trigger starts an action at once, as pstat tm does (pstat.Controller).
func (a *Agent) Trigger(ctx context.Context, act swu.Action) error {
	return a.Apply(ctx, swu.Update{Action: &act, Now: true})
}

// applyUpdate runs on the loop. It works out the whole change first —
// purl, schedule, updatetime and the state machine's answer — and only then
// commits it in one transition.
func (a *Agent) applyUpdate(ctx context.Context, u swu.Update) error {
	cur := a.st
	busy := cur.Machine.State == swu.StateSVV || cur.Machine.State == swu.StateUpgrading ||
		cur.Machine.Goal != swu.ActionIdle
	if u.PURL != nil && *u.PURL != cur.PURL && busy && !cancels(u) {
		return &swu.Error{Property: swu.PropPURL, Message: fmt.Sprintf(
			"purl cannot change while an update is running (state %s, action %s)", cur.Machine.State, cur.Machine.Goal)}
	}

	sched := cur.Schedule
	updateTime := cur.UpdateTime
	var req *swu.Action // action to request from the state machine now
	now := a.now().UTC().Truncate(time.Second)
	switch {
	case u.Action != nil && *u.Action == swu.ActionIdle:
		// Cancel: the schedule and whatever runs.
		sched, req = nil, u.Action
		if u.UpdateTime != nil && !u.Now {
			updateTime = *u.UpdateTime
		}
	case u.CancelTime:
		sched = nil
	case u.Action != nil && u.Now:
		sched, req, updateTime = nil, u.Action, now
	case u.Action != nil && u.UpdateTime != nil:
		sched = &scheduled{Action: *u.Action, At: u.UpdateTime.UTC()}
		updateTime = sched.At
	case (u.UpdateTime != nil || u.Now) && cur.Schedule == nil:
		return &swu.Error{Property: swu.PropUpdateTime,
			Message: "no action is scheduled; send swupdateaction together with updatetime"}
	case u.Now:
		act := cur.Schedule.Action
		sched, req, updateTime = nil, &act, now
	case u.UpdateTime != nil:
		sched = &scheduled{Action: cur.Schedule.Action, At: u.UpdateTime.UTC()}
		updateTime = sched.At
	}

	mutate := func(p *persisted) {
		if u.PURL != nil {
			p.PURL = *u.PURL
		}
		p.Schedule = sched
		p.UpdateTime = updateTime
	}
	var err error
	if req != nil {
		err = a.transition(ctx, fsm.Event{Kind: fsm.EvRequest, Action: *req}, mutate)
	} else {
		st := a.st.clone()
		mutate(&st)
		err = a.commit(st)
	}
	if err != nil {
		return err
	}
	a.syncSchedule()
	return nil
}

func cancels(u swu.Update) bool { return u.Action != nil && *u.Action == swu.ActionIdle }

// syncSchedule makes the scheduler match the persisted schedule.
func (a *Agent) syncSchedule() {
	if a.st.Schedule == nil {
		a.sched.Cancel()
		return
	}
	a.sched.Set(a.entry(*a.st.Schedule))
}

// fire runs a scheduled action (on the loop). The schedule is consumed
// whatever the state machine answers; a refusal is reported in the detail,
// since nobody is waiting for a reply.
func (a *Agent) fire(ctx context.Context, s scheduled) error {
	if a.st.Schedule == nil || a.st.Schedule.Action != s.Action || !a.st.Schedule.At.Equal(s.At) {
		return nil // replaced or cancelled after the timer fired
	}
	consume := func(p *persisted) { p.Schedule = nil }
	err := a.transition(ctx, fsm.Event{Kind: fsm.EvRequest, Action: s.Action}, consume)
	if err == nil {
		return nil
	}
	st := a.st.clone()
	consume(&st)
	st.Detail = fmt.Sprintf("scheduled %s at %s did not run: %v", s.Action, s.At.Format(time.RFC3339), err)
	return a.commit(st)
}
