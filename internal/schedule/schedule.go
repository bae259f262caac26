// Package schedule runs one pending action at an absolute wall-clock time:
// the swupdateaction that an UPDATE scheduled with updatetime.
//
// # Wall clock, not elapsed time
//
// An updatetime is a point in civil time ("upgrade at 03:00 UTC"). Go
// timers, however, count elapsed time on the monotonic clock, which neither
// follows a wall-clock step (NTP sync after boot, an operator setting the
// date) nor, on Linux, advances while the device is suspended. A single
// timer set for the whole delay would fire at the wrong wall time after any
// such jump. The scheduler therefore never sleeps longer than a bounded
// recheck interval (DefaultRecheck, see WithRecheck) and on every wake-up
// compares clock.Now() with the entry's time, so:
//
//   - without a jump, the entry fires at its time (the last sleep is the
//     exact remainder);
//   - after a forward jump past the entry's time, it fires within one
//     recheck interval;
//   - after a backward jump, it waits until the wall clock reaches its time
//     again;
//   - it fires exactly once: the entry is cleared as it fires, so a
//     backward jump past an entry that already fired cannot fire it again.
//
// Comparisons use the wall reading only (times are stripped of Go's
// monotonic reading), so an entry built as time.Now().Add(d) is also
// treated as an absolute wall-clock time.
//
// # Persistence
//
// The scheduler holds its entry in memory only. Its owner (the agent)
// persists the Entry before calling Set, clears it when fire is called, and
// at start-up hands the persisted entry to Restore: an entry whose time
// passed while the device was off fires at once, once.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultRecheck is the longest the scheduler sleeps before looking at the
// wall clock again: the worst-case delay after a forward clock jump.
const DefaultRecheck = time.Minute

var (
	// ErrInvalidEntry: an Entry without an action or without a time.
	ErrInvalidEntry = errors.New("schedule: invalid entry")
	// ErrRunning: Run was called while another Run is active.
	ErrRunning = errors.New("schedule: already running")
)

// Entry is one scheduled action. Action is opaque here (the agent stores a
// swu.Action), so that this package depends on nothing but time. The JSON
// form is what the agent persists.
type Entry struct {
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// IsZero reports whether e is the zero Entry, i.e. nothing scheduled.
func (e Entry) IsZero() bool { return e.Action == "" && e.At.IsZero() }

func (e Entry) validate() error {
	if e.Action == "" {
		return fmt.Errorf("%w: no action", ErrInvalidEntry)
	}
	if e.At.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalidEntry)
	}
	return nil
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithRecheck sets the longest sleep between two looks at the wall clock
// (default DefaultRecheck). Values ≤ 0 keep the default.
func WithRecheck(d time.Duration) Option {
	return func(s *Scheduler) {
		if d > 0 {
			s.recheck = d
		}
	}
}

// Scheduler holds at most one pending Entry and calls fire when the wall
// clock reaches its time. Set, Restore, Cancel and Pending are safe for
// concurrent use, also from within fire; entries fire only while Run runs.
type Scheduler struct {
	clock   Clock
	fire    func(Entry)
	recheck time.Duration

	wake chan struct{} // capacity 1: "the entry changed, look again"

	mu      sync.Mutex
	pending Entry
	has     bool
	gen     uint64 // bumped on every change of pending, so Run can skip stale wake-ups
	running bool
}

// New returns a Scheduler that reads time from clock (SystemClock if nil)
// and calls fire from Run's goroutine, once per entry, when it is due. fire
// should return quickly — hand the action to the agent's own loop — since
// no other entry can fire while it runs. A nil fire is a programming error
// and panics.
func New(clock Clock, fire func(Entry), opts ...Option) *Scheduler {
	if fire == nil {
		panic("schedule.New: nil fire func")
	}
	if clock == nil {
		clock = SystemClock{}
	}
	s := &Scheduler{clock: clock, fire: fire, recheck: DefaultRecheck, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Set replaces any pending entry with e. An entry whose time has already
// come (updatetime "now") fires at once.
func (s *Scheduler) Set(e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	e.At = e.At.Round(0) // wall clock only; see the package doc
	s.mu.Lock()
	s.pending, s.has = e, true
	s.gen++
	s.mu.Unlock()
	s.poke()
	return nil
}

// Restore installs the entry persisted by a previous run. An entry whose
// time passed while the device was off fires once, as soon as Run runs. The
// zero Entry (nothing was scheduled) is accepted and does nothing.
func (s *Scheduler) Restore(e Entry) error {
	if e.IsZero() {
		return nil
	}
	return s.Set(e)
}

// Cancel removes the pending entry. It reports whether there was one: false
// means nothing was pending, or it has already been handed to fire.
func (s *Scheduler) Cancel() bool {
	s.mu.Lock()
	had := s.has
	s.pending, s.has = Entry{}, false
	s.gen++
	s.mu.Unlock()
	s.poke()
	return had
}

// Pending returns the entry waiting to fire, if any.
func (s *Scheduler) Pending() (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending, s.has
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already queued; Run reads the latest entry anyway
	}
}

// Run fires entries as they come due until ctx is done, then returns nil.
// Only one Run may be active at a time (ErrRunning); after it returns,
// Run may be called again.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	var (
		timer Timer
		tick  <-chan time.Time // nil while nothing is pending: blocks forever
		seen  uint64
		fresh = true // evaluate even if gen did not change
	)
	stop := func() {
		if timer != nil {
			timer.Stop()
			timer, tick = nil, nil
		}
	}
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil // do not fire after the owner asked to stop
		}
		if fresh {
			e, due, wait, gen := s.next()
			seen = gen
			stop()
			if due {
				s.fire(e)
				continue // the entry may have been replaced meanwhile
			}
			if wait > 0 {
				timer = s.clock.NewTimer(wait)
				tick = timer.C()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			fresh = true
		case <-s.wake:
			// A wake-up queued for a change this loop already saw is
			// dropped, so that it does not restart the timer.
			s.mu.Lock()
			fresh = s.gen != seen
			s.mu.Unlock()
		}
	}
}

// next decides, at the current wall-clock time, whether the pending entry
// is due (and then takes it, so that it fires once) or how long to sleep
// before looking again (0: nothing pending).
func (s *Scheduler) next() (e Entry, due bool, wait time.Duration, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.has {
		return Entry{}, false, 0, s.gen
	}
	now := s.clock.Now().Round(0)
	if !now.Before(s.pending.At) {
		e = s.pending
		s.pending, s.has = Entry{}, false
		s.gen++
		return e, true, 0, s.gen
	}
	return Entry{}, false, min(s.pending.At.Sub(now), s.recheck), s.gen
}
