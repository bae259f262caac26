package schedule_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/schedule"
	"github.com/ocfupdate/ocfupdate/internal/schedule/schedtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

const recheck = time.Minute

// hangGuard bounds every wait so that a bug fails the test instead of
// hanging it. It is not a timing assertion.
const hangGuard = 10 * time.Second

// recorder is the fire func: it records each entry and whether the
// scheduler still reported it pending while it fired.
type recorder struct {
	s *schedule.Scheduler

	mu               sync.Mutex
	got              []schedule.Entry
	pendingWhenFired bool
	onFire           func(schedule.Entry) // optional, called after recording
}

func (r *recorder) fire(e schedule.Entry) {
	_, pending := r.s.Pending()
	r.mu.Lock()
	r.got = append(r.got, e)
	r.pendingWhenFired = r.pendingWhenFired || pending
	f := r.onFire
	r.mu.Unlock()
	if f != nil {
		f(e)
	}
}

func (r *recorder) fired() []schedule.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// harness runs a Scheduler on a fake clock and lets a test step it: every
// step waits until the scheduler has reacted (armed a new timer, fired, or
// dropped its timer), so that what the test sees next is settled.
type harness struct {
	t     *testing.T
	clock *schedtest.Clock
	s     *schedule.Scheduler
	rec   *recorder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: schedtest.NewClock(t0), rec: &recorder{}}
	h.s = schedule.New(h.clock, h.rec.fire, schedule.WithRecheck(recheck))
	h.rec.s = h.s
	return h
}

// run starts Run and stops it at the end of the test, checking that it
// returns nil.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
	})
}

// waitUntil polls cond; only a hang guard bounds it.
func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("scheduler never reacted: %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// reacted waits until the scheduler fired or armed a timer since the
// counts given.
func (h *harness) reacted(what string, fired, created int) {
	h.t.Helper()
	h.waitUntil(what, func() bool {
		return len(h.rec.fired()) > fired || h.clock.Created() > created
	})
}

func (h *harness) set(e schedule.Entry) {
	h.t.Helper()
	f, c := len(h.rec.fired()), h.clock.Created()
	if err := h.s.Set(e); err != nil {
		h.t.Fatalf("Set(%+v): %v", e, err)
	}
	h.reacted("Set", f, c)
}

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	f, c := len(h.rec.fired()), h.clock.Created()
	if h.clock.Advance(d) > 0 {
		h.reacted("timer", f, c)
	}
}

func (h *harness) cancel(wantHad bool) {
	h.t.Helper()
	if had := h.s.Cancel(); had != wantHad {
		h.t.Fatalf("Cancel = %v, want %v", had, wantHad)
	}
	h.waitUntil("Cancel", func() bool { return h.clock.Active() == 0 })
}

func (h *harness) check(step int, want []schedule.Entry, wantPending *schedule.Entry) {
	h.t.Helper()
	if got := h.rec.fired(); !slices.EqualFunc(got, want, entryEqual) {
		h.t.Fatalf("step %d: fired %v, want %v", step, got, want)
	}
	p, ok := h.s.Pending()
	switch {
	case wantPending == nil && ok:
		h.t.Fatalf("step %d: Pending = %+v, want none", step, p)
	case wantPending != nil && (!ok || !entryEqual(p, *wantPending)):
		h.t.Fatalf("step %d: Pending = %+v %v, want %+v", step, p, ok, *wantPending)
	}
	if h.rec.pendingWhenFired {
		h.t.Fatalf("step %d: Pending reported the entry while it fired", step)
	}
}

func entryEqual(a, b schedule.Entry) bool { return a.Action == b.Action && a.At.Equal(b.At) }

// step is one operation of a table test; exactly one field is set.
type step struct {
	set     *schedule.Entry
	restore *schedule.Entry // before Run only (see restoreFirst)
	cancel  *bool           // Cancel, expecting this result
	advance time.Duration   // elapsed and wall time move on
	jump    *time.Time      // the wall clock is stepped; timers do not notice

	fired   []schedule.Entry // all entries fired so far
	pending *schedule.Entry  // the entry still pending, if any
}

func at(d time.Duration) time.Time                    { return t0.Add(d) }
func entry(a string, d time.Duration) *schedule.Entry { return &schedule.Entry{Action: a, At: at(d)} }
func ptr[T any](v T) *T                               { return &v }
func fired(es ...*schedule.Entry) []schedule.Entry {
	out := []schedule.Entry{}
	for _, e := range es {
		out = append(out, *e)
	}
	return out
}

func TestScheduler(t *testing.T) {
	a10m := entry("upgrade", 10*time.Minute)
	tests := []struct {
		name  string
		steps []step
	}{
		{"fires once at the time, not before", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{advance: 9 * time.Minute, pending: a10m, fired: fired()},
			{advance: 59 * time.Second, pending: a10m, fired: fired()},
			{advance: time.Second, fired: fired(a10m)},
			{advance: time.Hour, fired: fired(a10m)},
		}},
		{"one long advance fires it", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{advance: 3 * time.Hour, fired: fired(a10m)},
		}},
		{"set replaces a later entry", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{set: entry("isac", 5*time.Minute), pending: entry("isac", 5*time.Minute), fired: fired()},
			{advance: 5 * time.Minute, fired: fired(entry("isac", 5*time.Minute))},
			{advance: 10 * time.Minute, fired: fired(entry("isac", 5*time.Minute))},
		}},
		{"set replaces an earlier entry", []step{
			{set: entry("isac", 30*time.Second), pending: entry("isac", 30*time.Second), fired: fired()},
			{set: entry("isvv", 2*time.Minute), pending: entry("isvv", 2*time.Minute), fired: fired()},
			{advance: time.Minute, pending: entry("isvv", 2*time.Minute), fired: fired()},
			{advance: time.Minute, fired: fired(entry("isvv", 2*time.Minute))},
		}},
		{"cancel", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{cancel: ptr(true), fired: fired()},
			{advance: time.Hour, fired: fired()},
			{cancel: ptr(false), fired: fired()},
		}},
		{"a time already come fires at once", []step{
			{set: entry("upgrade", 0), fired: fired(entry("upgrade", 0))},
			{set: entry("isac", -time.Hour), fired: fired(entry("upgrade", 0), entry("isac", -time.Hour))},
		}},
		{"restore of a time missed while off fires once at once", []step{
			{restore: entry("upgrade", -6*time.Hour)},
			{fired: fired(entry("upgrade", -6*time.Hour))},
			{advance: 24 * time.Hour, fired: fired(entry("upgrade", -6*time.Hour))},
		}},
		{"restore of a future time schedules it", []step{
			{restore: entry("isvv", 90*time.Second)},
			{pending: entry("isvv", 90*time.Second), fired: fired()},
			{advance: time.Minute, pending: entry("isvv", 90*time.Second), fired: fired()},
			{advance: 30 * time.Second, fired: fired(entry("isvv", 90*time.Second))},
		}},
		{"restore of nothing", []step{
			{restore: &schedule.Entry{}},
			{fired: fired()},
		}},
		{"forward jump past the time fires within one recheck", []step{
			{set: entry("upgrade", time.Hour), pending: entry("upgrade", time.Hour), fired: fired()},
			// The timer runs on elapsed time and has not noticed yet.
			{jump: ptr(at(2 * time.Hour)), pending: entry("upgrade", time.Hour), fired: fired()},
			{advance: recheck, fired: fired(entry("upgrade", time.Hour))},
		}},
		{"backward jump delays", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{jump: ptr(at(-time.Hour)), pending: a10m, fired: fired()},
			{advance: 10 * time.Minute, pending: a10m, fired: fired()},
			{advance: 59 * time.Minute, pending: a10m, fired: fired()},
			{advance: time.Minute, fired: fired(a10m)},
		}},
		{"backward jump past a fired entry does not fire it again", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{advance: 10 * time.Minute, fired: fired(a10m)},
			{jump: ptr(at(0)), fired: fired(a10m)},
			{advance: time.Hour, fired: fired(a10m)},
		}},
		{"the same entry set again is a new entry", []step{
			{set: a10m, pending: a10m, fired: fired()},
			{advance: 10 * time.Minute, fired: fired(a10m)},
			{set: a10m, fired: fired(a10m, a10m)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			started, restored := false, false
			for i, st := range tc.steps {
				if st.restore != nil {
					if started {
						t.Fatal("bad test: restore after Run")
					}
					if err := h.s.Restore(*st.restore); err != nil {
						t.Fatalf("Restore: %v", err)
					}
					restored = !st.restore.IsZero()
					continue
				}
				if !started {
					h.run()
					started = true
					// Run picks up a restored entry by itself: it fires
					// it or arms a timer; wait for that like for a step.
					if restored {
						h.reacted("Restore", 0, 0)
					}
				}
				switch {
				case st.set != nil:
					h.set(*st.set)
				case st.cancel != nil:
					h.cancel(*st.cancel)
				case st.advance != 0:
					h.advance(st.advance)
				case st.jump != nil:
					h.clock.Set(*st.jump)
				}
				h.check(i, st.fired, st.pending)
			}
		})
	}
}

func TestInvalidEntries(t *testing.T) {
	s := schedule.New(schedtest.NewClock(t0), func(schedule.Entry) {})
	tests := []struct {
		name string
		e    schedule.Entry
	}{
		{"zero", schedule.Entry{}},
		{"no action", schedule.Entry{At: t0}},
		{"no time", schedule.Entry{Action: "upgrade"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(tc.e); !errors.Is(err, schedule.ErrInvalidEntry) {
				t.Errorf("Set = %v, want ErrInvalidEntry", err)
			}
			err := s.Restore(tc.e)
			if tc.e.IsZero() && err != nil {
				t.Errorf("Restore(zero) = %v, want nil", err)
			}
			if !tc.e.IsZero() && !errors.Is(err, schedule.ErrInvalidEntry) {
				t.Errorf("Restore = %v, want ErrInvalidEntry", err)
			}
			if p, ok := s.Pending(); ok {
				t.Errorf("Pending = %+v after a refused entry", p)
			}
		})
	}
}

func TestFiresOnlyWhileRunning(t *testing.T) {
	h := newHarness(t)
	e := entry("upgrade", -time.Minute)
	if err := h.s.Set(*e); err != nil {
		t.Fatal(err)
	}
	if p, ok := h.s.Pending(); !ok || !entryEqual(p, *e) {
		t.Fatalf("Pending = %+v %v before Run, want %+v", p, ok, *e)
	}
	if got := h.rec.fired(); len(got) != 0 {
		t.Fatalf("fired %v without Run", got)
	}
	h.run()
	h.reacted("Run", 0, 0)
	h.check(0, fired(e), nil)
}

func TestRunStopsAndRestarts(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	if err := h.s.Set(*entry("isac", time.Hour)); err != nil {
		t.Fatal(err)
	}
	h.reacted("Set", 0, 0)

	// A second Run while the first is active is refused.
	if err := h.s.Run(context.Background()); !errors.Is(err, schedule.ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	goleak.VerifyNone(t)
	if h.clock.Active() != 0 {
		t.Fatalf("Run left %d timers running", h.clock.Active())
	}
	// The entry stays pending and fires once Run runs again.
	h.clock.Advance(2 * time.Hour)
	if got := h.rec.fired(); len(got) != 0 {
		t.Fatalf("fired %v while stopped", got)
	}
	h.run()
	h.reacted("Run again", 0, h.clock.Created())
	h.check(0, fired(entry("isac", time.Hour)), nil)
}

func TestCancelledContextDoesNotFire(t *testing.T) {
	h := newHarness(t)
	if err := h.s.Set(*entry("upgrade", -time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.s.Run(ctx); err != nil {
		t.Fatalf("Run(done ctx) = %v, want nil", err)
	}
	if got := h.rec.fired(); len(got) != 0 {
		t.Fatalf("fired %v after the context was done", got)
	}
}

// fire may call back into the scheduler, e.g. to schedule the next action.
func TestFireCanReschedule(t *testing.T) {
	h := newHarness(t)
	next := entry("upgrade", 2*time.Minute)
	h.rec.onFire = func(e schedule.Entry) {
		if e.Action == "isac" {
			if err := h.s.Set(*next); err != nil {
				t.Errorf("Set from fire: %v", err)
			}
		}
	}
	h.run()
	h.set(*entry("isac", time.Minute))
	h.advance(time.Minute)
	h.check(0, fired(entry("isac", time.Minute)), next)
	h.advance(time.Minute)
	h.check(1, fired(entry("isac", time.Minute), next), nil)
}

// An entry built from time.Now() carries a monotonic reading, which Go uses
// for comparisons; the scheduler must drop it to compare wall clocks.
func TestEntryIsWallClockOnly(t *testing.T) {
	s := schedule.New(schedtest.NewClock(t0), func(schedule.Entry) {})
	at := time.Now().Add(time.Hour)
	if err := s.Set(schedule.Entry{Action: "upgrade", At: at}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Pending()
	if p.At != p.At.Round(0) {
		t.Fatalf("pending time %v still carries a monotonic reading", p.At)
	}
	if !p.At.Equal(at) {
		t.Fatalf("pending time %v, want %v", p.At, at)
	}
}

func TestSystemClock(t *testing.T) {
	got := make(chan schedule.Entry, 1)
	s := schedule.New(nil, func(e schedule.Entry) { got <- e })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	e := schedule.Entry{Action: "isac", At: time.Now().Add(50 * time.Millisecond)}
	if err := s.Set(e); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-got:
		if f.Action != e.Action || !f.At.Equal(e.At) {
			t.Fatalf("fired %+v, want %+v", f, e)
		}
		if time.Now().Round(0).Before(e.At.Round(0)) {
			t.Fatalf("fired before its time")
		}
	case <-time.After(hangGuard):
		t.Fatal("entry never fired")
	}
}
