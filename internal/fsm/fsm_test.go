package fsm

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func req(a swu.Action) Event               { return Event{Kind: EvRequest, Action: a} }
func ev(k EventKind) Event                 { return Event{Kind: k} }
func fail(k EventKind, r swu.Result) Event { return Event{Kind: k, Result: r} }

func mach(s swu.State, g swu.Action, r swu.Result) Machine {
	return Machine{State: s, Goal: g, Result: r}
}

// TestTransitions covers every row of the table, and the refusals and stale
// events around them: {from, event, want machine, want effects}.
func TestTransitions(t *testing.T) {
	E := func(e ...Effect) []Effect { return e }
	tests := []struct {
		from    Machine
		ev      Event
		want    Machine
		effects []Effect
		refused bool
	}{
		// idle
		{mach(idle, none, 8), req(none), mach(idle, none, 8), nil, false},
		{mach(idle, isac, 0), req(none), mach(idle, none, 0), E(CancelWork), false},
		{mach(idle, upgrade, 0), req(none), mach(idle, none, 0), E(CancelWork), false},
		{mach(idle, none, 8), req(isac), mach(idle, isac, 0), E(StartCheck), false},
		{mach(idle, isac, 0), req(isac), mach(idle, isac, 0), nil, true},
		{mach(idle, upgrade, 0), req(isac), mach(idle, upgrade, 0), nil, true},
		{mach(idle, none, 5), req(isvv), mach(svv, isvv, 0), E(StartFetch), false},
		{mach(idle, isac, 0), req(isvv), mach(idle, isvv, 0), nil, false},
		{mach(idle, upgrade, 0), req(isvv), mach(idle, upgrade, 0), nil, true},
		{mach(idle, none, 4), req(upgrade), mach(idle, upgrade, 0), E(StartCheck), false},
		{mach(idle, isac, 0), req(upgrade), mach(idle, upgrade, 0), nil, false},
		{mach(idle, isac, 0), ev(EvCheckFound), mach(nsa, none, 0), E(SetNV), false},
		{mach(idle, isvv, 0), ev(EvCheckFound), mach(nsa, isvv, 0), E(SetNV, Continue), false},
		{mach(idle, upgrade, 0), ev(EvCheckFound), mach(nsa, upgrade, 0), E(SetNV, Continue), false},
		{mach(idle, upgrade, 0), ev(EvCheckNone), mach(idle, none, 0), E(ClearNV), false},
		{mach(idle, isac, 0), fail(EvCheckFailed, 404), mach(idle, none, 404), E(ClearNV), false},
		{mach(idle, upgrade, 0), fail(EvCheckFailed, 4), mach(idle, none, 4), E(ClearNV), false},
		{mach(idle, isac, 0), fail(EvCheckFailed, 0), mach(idle, none, 8), E(ClearNV), false},
		{mach(idle, none, 0), ev(EvCheckFound), mach(idle, none, 0), nil, false}, // stale: cancelled
		{mach(idle, none, 0), ev(EvFetchDone), mach(idle, none, 0), nil, false},
		{mach(idle, none, 0), ev(EvInstallDone), mach(idle, none, 0), nil, false},
		{mach(idle, none, 0), ev(EvContinue), mach(idle, none, 0), nil, false},
		{mach(idle, isac, 0), ev(EvBoot), mach(idle, isac, 0), E(StartCheck), false},
		{mach(idle, upgrade, 0), ev(EvBoot), mach(idle, upgrade, 0), E(StartCheck), false},
		{mach(idle, none, 1), ev(EvBoot), mach(idle, none, 1), nil, false},

		// nsa
		{mach(nsa, none, 0), req(none), mach(idle, none, 0), E(CancelWork, ClearNV), false},
		{mach(nsa, none, 0), req(isac), mach(nsa, isac, 0), E(StartCheck), false},
		{mach(nsa, isac, 0), req(isac), mach(nsa, isac, 0), nil, true},
		{mach(nsa, none, 0), req(isvv), mach(svv, isvv, 0), E(StartFetch), false},
		{mach(nsa, isac, 0), req(isvv), mach(nsa, isvv, 0), nil, false},
		{mach(nsa, upgrade, 0), req(isvv), mach(nsa, upgrade, 0), nil, true},
		{mach(nsa, none, 0), req(upgrade), mach(svv, upgrade, 0), E(StartFetch), false},
		{mach(nsa, isac, 0), req(upgrade), mach(nsa, upgrade, 0), nil, false},
		{mach(nsa, isac, 0), ev(EvCheckFound), mach(nsa, none, 0), E(SetNV), false},
		{mach(nsa, upgrade, 0), ev(EvCheckFound), mach(nsa, upgrade, 0), E(SetNV, Continue), false},
		{mach(nsa, isac, 0), ev(EvCheckNone), mach(idle, none, 0), E(ClearNV), false},
		{mach(nsa, isac, 0), fail(EvCheckFailed, 503), mach(idle, none, 503), E(ClearNV), false},
		{mach(nsa, isvv, 0), ev(EvContinue), mach(svv, isvv, 0), E(StartFetch), false},
		{mach(nsa, upgrade, 0), ev(EvContinue), mach(svv, upgrade, 0), E(StartFetch), false},
		{mach(nsa, none, 0), ev(EvContinue), mach(nsa, none, 0), nil, false},
		{mach(nsa, none, 0), ev(EvCheckFound), mach(nsa, none, 0), nil, false},
		{mach(nsa, isac, 0), ev(EvBoot), mach(nsa, isac, 0), E(StartCheck), false},
		{mach(nsa, upgrade, 0), ev(EvBoot), mach(nsa, upgrade, 0), E(Continue), false},
		{mach(nsa, none, 0), ev(EvBoot), mach(nsa, none, 0), nil, false},

		// svv
		{mach(svv, isvv, 0), req(none), mach(idle, none, 0), E(CancelWork, Discard, ClearNV), false},
		{mach(svv, isvv, 0), req(isac), mach(svv, isvv, 0), nil, true},
		{mach(svv, upgrade, 0), req(isvv), mach(svv, isvv, 0), nil, false},
		{mach(svv, isvv, 0), req(upgrade), mach(svv, upgrade, 0), nil, false},
		{mach(svv, upgrade, 0), ev(EvFetchDone), mach(sva, upgrade, 0), E(Continue), false},
		{mach(svv, isvv, 0), ev(EvFetchDone), mach(sva, none, 0), nil, false},
		{mach(svv, isvv, 0), fail(EvFetchFailed, 5), mach(idle, none, 5), E(Discard, ClearNV), false},
		{mach(svv, isvv, 0), ev(EvFetchNone), mach(idle, none, 0), E(Discard, ClearNV), false},
		{mach(idle, none, 0), ev(EvFetchNone), mach(idle, none, 0), nil, false},
		{mach(svv, upgrade, 0), fail(EvFetchFailed, 3), mach(idle, none, 3), E(Discard, ClearNV), false},
		{mach(svv, upgrade, 0), fail(EvFetchFailed, 599), mach(idle, none, 599), E(Discard, ClearNV), false},
		{mach(svv, upgrade, 0), ev(EvCheckFound), mach(svv, upgrade, 0), nil, false},
		{mach(svv, upgrade, 0), ev(EvInstallDone), mach(svv, upgrade, 0), nil, false},
		{mach(svv, upgrade, 0), ev(EvBoot), mach(svv, upgrade, 0), E(StartFetch), false},

		// sva
		{mach(sva, none, 0), req(none), mach(idle, none, 0), E(Discard, ClearNV), false},
		{mach(sva, none, 0), req(isac), mach(sva, none, 0), nil, true},
		{mach(sva, none, 0), req(isvv), mach(sva, none, 0), nil, false},
		{mach(sva, none, 0), req(upgrade), mach(upgrading, upgrade, 0), E(StartInstall), false},
		{mach(sva, upgrade, 0), ev(EvContinue), mach(upgrading, upgrade, 0), E(StartInstall), false},
		{mach(sva, none, 0), ev(EvContinue), mach(sva, none, 0), nil, false},
		{mach(sva, upgrade, 0), ev(EvBoot), mach(sva, upgrade, 0), E(Continue), false},
		{mach(sva, none, 0), ev(EvBoot), mach(sva, none, 0), nil, false},
		{mach(sva, none, 0), ev(EvFetchDone), mach(sva, none, 0), nil, false},

		// upgrading
		{mach(upgrading, upgrade, 0), req(none), mach(upgrading, upgrade, 0), nil, true},
		{mach(upgrading, upgrade, 0), req(isac), mach(upgrading, upgrade, 0), nil, true},
		{mach(upgrading, upgrade, 0), req(isvv), mach(upgrading, upgrade, 0), nil, true},
		{mach(upgrading, upgrade, 0), req(upgrade), mach(upgrading, upgrade, 0), nil, true},
		{mach(upgrading, upgrade, 0), ev(EvInstallDone), mach(idle, none, 1), E(CommitVersion, Discard, ClearNV), false},
		{mach(upgrading, upgrade, 0), fail(EvInstallFailed, 8), mach(idle, none, 8), E(Discard, ClearNV), false},
		{mach(upgrading, upgrade, 0), fail(EvInstallFailed, 2), mach(idle, none, 2), E(Discard, ClearNV), false},
		{mach(upgrading, upgrade, 0), ev(EvFetchFailed), mach(upgrading, upgrade, 0), nil, false},
		{mach(upgrading, upgrade, 0), ev(EvBoot), mach(upgrading, upgrade, 0), E(ConfirmInstall), false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/%s/%s%s", tt.from.State, tt.from.Goal, tt.ev.Kind, tt.ev.Action)
		t.Run(name, func(t *testing.T) {
			got, effects, err := Next(tt.from, tt.ev)
			if tt.refused {
				var r *Refusal
				if !errors.As(err, &r) || !errors.Is(err, ErrRefused) || r.Reason == "" {
					t.Fatalf("err = %v, want a Refusal with a reason", err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("machine = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(effects, tt.effects) {
				t.Errorf("effects = %v, want %v", effects, tt.effects)
			}
		})
	}
}

var (
	allStates  = []swu.State{idle, nsa, svv, sva, upgrading}
	allGoals   = []swu.Action{none, isac, isvv, upgrade}
	allResults = []swu.Result{0, 1, 4, 8, 404}
)

func allEvents() []Event {
	evs := []Event{req(none), req(isac), req(isvv), req(upgrade)}
	for _, k := range []EventKind{EvContinue, EvCheckFound, EvCheckNone, EvFetchDone, EvFetchNone, EvInstallDone, EvBoot} {
		evs = append(evs, ev(k))
	}
	for _, k := range []EventKind{EvCheckFailed, EvFetchFailed, EvInstallFailed} {
		evs = append(evs, fail(k, 4), fail(k, 404))
	}
	return evs
}

// TestEveryCell runs every (state, goal, result, event) and checks the
// invariants that hold for all of them.
func TestEveryCell(t *testing.T) {
	for _, s := range allStates {
		for _, g := range allGoals {
			for _, r := range allResults {
				for _, e := range allEvents() {
					m := mach(s, g, r)
					n, effects, err := Next(m, e)
					where := fmt.Sprintf("%+v + %+v", m, e)
					if err != nil {
						if e.Kind != EvRequest || !errors.Is(err, ErrRefused) {
							t.Fatalf("%s: unexpected error %v", where, err)
						}
						if n != m || effects != nil {
							t.Fatalf("%s: refused but changed to %+v %v", where, n, effects)
						}
						continue
					}
					if !validState(n.State) || !validGoal(n.Goal) {
						t.Fatalf("%s: invalid result %+v", where, n)
					}
					if n == m {
						continue // stale or no-op: nothing to check
					}
					if n.State == upgrading && n.Goal != upgrade {
						t.Fatalf("%s: upgrading without the upgrade goal: %+v", where, n)
					}
					if n.State == svv && n.Goal != isvv && n.Goal != upgrade {
						t.Fatalf("%s: downloading without a goal: %+v", where, n)
					}
					if n.Result == swu.ResultSuccess && m.Result != swu.ResultSuccess && e.Kind != EvInstallDone {
						t.Fatalf("%s: success without an install", where)
					}
					if n.State != m.State && n.State != idle && n.Result != m.Result && n.Result != 0 {
						t.Fatalf("%s: failure result outside idle", where)
					}
					if contains([]swu.Action{isac, isvv, upgrade}, e.Action) && n.State != m.State && n.Result != swu.ResultIdle {
						t.Fatalf("%s: a new action must clear the result", where)
					}
				}
			}
		}
	}
}

// TestReachableTransitions explores the machine from Initial with every event
// and compares the state changes it can make with the documented set (a
// subset of Table 3, which allows every change).
func TestReachableTransitions(t *testing.T) {
	seen := map[Machine]bool{Initial: true}
	queue := []Machine{Initial}
	edges := map[string]bool{}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		for _, e := range allEvents() {
			n, _, err := Next(m, e)
			if err != nil {
				continue
			}
			if n.State != m.State {
				edges[string(m.State)+"->"+string(n.State)] = true
			}
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	var got []string
	for e := range edges {
		got = append(got, e)
	}
	sort.Strings(got)
	want := []string{
		"idle->nsa", "idle->svv",
		"nsa->idle", "nsa->svv",
		"svv->idle", "svv->sva",
		"sva->idle", "sva->upgrading",
		"upgrading->idle",
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("transitions = %v\nwant %v", got, want)
	}
}

// TestFigure2 walks the spec's Figure 2: upgrade from idle through every
// state and back to idle with result 1, following the effects as the agent
// does.
func TestFigure2(t *testing.T) {
	m := Initial
	var states []swu.State
	outcome := map[Effect]Event{
		StartCheck:   ev(EvCheckFound),
		StartFetch:   ev(EvFetchDone),
		StartInstall: ev(EvInstallDone),
		Continue:     ev(EvContinue),
	}
	pending := []Event{req(upgrade)}
	for len(pending) > 0 {
		e := pending[0]
		pending = pending[1:]
		n, effects, err := Next(m, e)
		if err != nil {
			t.Fatalf("%+v + %+v: %v", m, e, err)
		}
		if n.State != m.State {
			states = append(states, n.State)
		}
		m = n
		for _, f := range effects {
			if o, ok := outcome[f]; ok {
				pending = append(pending, o)
			}
		}
	}
	want := []swu.State{nsa, svv, sva, upgrading, idle}
	if !reflect.DeepEqual(states, want) || m != mach(idle, none, swu.ResultSuccess) {
		t.Errorf("states %v, final %+v; want %v ending idle/result 1", states, m, want)
	}
}

func TestInvalidInput(t *testing.T) {
	if _, _, err := Next(Machine{State: "bogus", Goal: none}, req(isac)); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("invalid state: err = %v", err)
	}
	if _, _, err := Next(Initial, req("reboot")); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("invalid action: err = %v", err)
	}
}
