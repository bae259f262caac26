// Package schedtest provides a fake schedule.Clock for tests of the
// scheduler and of its owner (the agent).
//
// The fake keeps the two clocks a real system has apart: a wall clock,
// read by Now, and an elapsed-time clock that drives timers, as the
// monotonic clock drives Go's timers. Advance moves both; Set steps the wall
// clock alone, as NTP or an operator setting the date does, and — exactly
// like a real timer — a pending timer does not notice. A test of a clock
// jump therefore calls Set and then Advance past the scheduler's recheck
// interval.
package schedtest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/schedule"
)

// Clock is a fake schedule.Clock. The zero value is not usable; use NewClock.
type Clock struct {
	mu      sync.Mutex
	wall    time.Time
	elapsed time.Duration // the fake monotonic clock; never goes back
	active  []*timer      // created, neither fired nor stopped
	created int
	changed chan struct{} // closed and replaced whenever created or active changes
}

var _ schedule.Clock = (*Clock)(nil)

// NewClock returns a fake clock whose wall clock reads start.
func NewClock(start time.Time) *Clock {
	return &Clock{wall: start.Round(0), changed: make(chan struct{})}
}

// Now returns the fake wall-clock time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// NewTimer returns a timer that fires once the elapsed-time clock has
// advanced by d (at once if d ≤ 0).
func (c *Clock) NewTimer(d time.Duration) schedule.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, deadline: c.elapsed + d, ch: make(chan time.Time, 1)}
	c.created++
	if d <= 0 {
		t.ch <- c.wall
	} else {
		c.active = append(c.active, t)
	}
	c.notifyLocked()
	return t
}

// Advance moves the wall clock and the elapsed-time clock forward by d and
// fires, in deadline order, the timers that came due; each delivers the new
// wall time, once, like a real timer after a long stall. A negative d is
// ignored: elapsed time does not go back (use Set for a backward jump). It
// returns the number of timers fired.
func (c *Clock) Advance(d time.Duration) int {
	if d < 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.elapsed += d
	c.wall = c.wall.Add(d)
	var due []*timer
	c.active = slices.DeleteFunc(c.active, func(t *timer) bool {
		if t.deadline <= c.elapsed {
			due = append(due, t)
			return true
		}
		return false
	})
	slices.SortStableFunc(due, func(a, b *timer) int { return cmp.Compare(a.deadline, b.deadline) })
	for _, t := range due {
		t.ch <- c.wall // capacity 1 and sent at most once: never blocks
	}
	if len(due) > 0 {
		c.notifyLocked()
	}
	return len(due)
}

// Set steps the wall clock to t, forwards or backwards, without moving the
// elapsed-time clock: no timer fires.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = t.Round(0)
}

// Created returns the number of timers created so far.
func (c *Clock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// Active returns the number of timers neither fired nor stopped.
func (c *Clock) Active() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.active)
}

// WaitCreated blocks until at least n timers have been created, or ctx is
// done. It lets a test know that the code under test has armed a timer.
func (c *Clock) WaitCreated(ctx context.Context, n int) error {
	return c.wait(ctx, func() bool { return c.created >= n })
}

// WaitActive blocks until exactly n timers are active, or ctx is done.
func (c *Clock) WaitActive(ctx context.Context, n int) error {
	return c.wait(ctx, func() bool { return len(c.active) == n })
}

func (c *Clock) wait(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c        *Clock
	deadline time.Duration
	ch       chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

// Stop reports whether the timer was still active.
func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.active, t)
	if i < 0 {
		return false
	}
	c.active = slices.Delete(c.active, i, i+1)
	c.notifyLocked()
	return true
}
