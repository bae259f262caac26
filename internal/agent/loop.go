package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fsm"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// The agent's state has one owner: the loop goroutine. CoAP handlers, the
// scheduler and step goroutines send it messages; it runs the state
// machine, persists, notifies and starts the next step, one message at a
// time. That is where a CoAP request becomes a state change:
//
//	swu.Resource.Serve → Agent.Apply → loop → applyUpdate → transition
//	  → fsm.Next → save → publish (notify observers) → effects (steps)
type message struct {
	run   func(ctx context.Context) error
	reply chan error // nil: nobody waits
}

// do runs f on the loop and waits for its result.
func (a *Agent) do(ctx context.Context, f func(ctx context.Context) error) error {
	m := message{run: f, reply: make(chan error, 1)}
	select {
	case a.inbox <- m:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopped:
		return errStopped
	}
	select {
	case err := <-m.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-a.stopped:
		return errStopped
	}
}

// post queues f on the loop without waiting (steps and the scheduler).
func (a *Agent) post(f func(ctx context.Context) error) {
	select {
	case a.inbox <- message{run: f}:
	case <-a.stopped:
	}
}

var errStopped = errors.New("agent stopped")

func (a *Agent) loop(ctx context.Context) {
	defer close(a.stopped)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-a.inbox:
			err := m.run(ctx)
			if m.reply != nil {
				m.reply <- err
			} else if err != nil {
				a.log.Error("agent", "err", err)
			}
		}
	}
}

// transition feeds ev to the state machine. On success the new state, with
// mutate applied, is persisted before anything else happens; then observers
// are notified and the effects run. A refused request returns a *swu.Error
// and changes nothing.
func (a *Agent) transition(ctx context.Context, ev fsm.Event, mutate func(*persisted)) error {
	next, effects, err := fsm.Next(a.st.Machine, ev)
	if err != nil {
		var r *fsm.Refusal
		if errors.As(err, &r) {
			return &swu.Error{Property: swu.PropAction, Message: r.Reason}
		}
		return err
	}
	if next == a.st.Machine && len(effects) == 0 && mutate == nil {
		return nil // stale outcome or a no-op request
	}
	st := a.st.clone()
	if mutate != nil {
		mutate(&st)
	}
	st.Machine = next
	for _, e := range effects {
		a.applyProperty(&st, e)
	}
	if err := a.commit(st); err != nil {
		return err
	}
	a.log.Info("transition", "event", ev.Kind, "action", ev.Action, "state", next.State,
		"goal", next.Goal, "result", int(next.Result), "detail", st.Detail)
	for _, e := range effects {
		if e == fsm.Continue {
			continue
		}
		a.runEffect(ctx, e)
	}
	for _, e := range effects {
		if e == fsm.Continue {
			return a.transition(ctx, fsm.Event{Kind: fsm.EvContinue}, nil)
		}
	}
	return nil
}

// applyProperty carries out the effects that only change properties, and
// says in the detail what the device is now doing.
func (a *Agent) applyProperty(st *persisted, e fsm.Effect) {
	switch e {
	case fsm.SetNV:
		st.NV = st.Target.Version
	case fsm.ClearNV:
		// The target goes with nv: a later isvv straight from idle must
		// ask the repository for the newest package, not re-fetch one that
		// is installed or was withdrawn since.
		st.NV = ""
		st.Target = step.Target{}
	case fsm.CommitVersion:
		st.InstalledVersion = st.Target.Version
		st.InstalledCounter = st.Target.Counter
		st.LastUpdate = a.clock.Now().UTC()
	case fsm.StartCheck:
		st.Detail = "checking for a newer version"
	case fsm.StartFetch:
		st.Detail = fmt.Sprintf("downloading and verifying version %s", orUnknown(st.Target.Version))
	case fsm.StartInstall:
		st.Detail = fmt.Sprintf("installing version %s", st.Target.Version)
	case fsm.ConfirmInstall:
		st.Detail = fmt.Sprintf("confirming version %s after restart", st.Target.Version)
	}
}

func orUnknown(v string) string {
	if v == "" {
		return "(newest)"
	}
	return v
}

// commit persists st and makes it the agent's state, then notifies
// observers of everything that may have changed. A failed write leaves the
// old state in force.
func (a *Agent) commit(st persisted) error {
	if err := a.store.Save(stateFile, &st); err != nil {
		return fmt.Errorf("persist state: %w", err)
	}
	old := a.st
	a.st = st
	a.publish(old)
	return nil
}

// now is the current time for validation and scheduling.
func (a *Agent) now() time.Time { return a.clock.Now() }
