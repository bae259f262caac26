package schedule

import "time"

// Clock is the scheduler's source of time, injected so that tests can move
// time (and jump the wall clock) at will; see schedtest.Clock.
type Clock interface {
	// Now is the current wall-clock time. Only its wall reading is used.
	Now() time.Time
	// NewTimer fires once after d has elapsed on the clock's timer base,
	// which for the system clock is the monotonic clock, not the wall clock.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer created by a Clock.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; false if it had already fired or
	// been stopped.
	Stop() bool
}

// SystemClock is the real clock: time.Now and time.NewTimer.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
