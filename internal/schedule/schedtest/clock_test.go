package schedtest

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fired(tm interface{ C() <-chan time.Time }) (time.Time, bool) {
	select {
	case v := <-tm.C():
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestAdvanceFiresDueTimers(t *testing.T) {
	c := NewClock(t0)
	short := c.NewTimer(time.Minute)
	long := c.NewTimer(time.Hour)
	if n := c.Advance(59 * time.Second); n != 0 {
		t.Fatalf("Advance(59s) fired %d timers, want 0", n)
	}
	if n := c.Advance(time.Second); n != 1 {
		t.Fatalf("Advance(1s) fired %d timers, want 1", n)
	}
	if v, ok := fired(short); !ok || !v.Equal(t0.Add(time.Minute)) {
		t.Fatalf("short timer: fired=%v at %v, want at %v", ok, v, t0.Add(time.Minute))
	}
	if _, ok := fired(long); ok {
		t.Fatal("long timer fired early")
	}
	if got := c.Active(); got != 1 {
		t.Fatalf("Active = %d, want 1", got)
	}
	if !long.Stop() {
		t.Fatal("Stop of an active timer = false")
	}
	if long.Stop() || short.Stop() {
		t.Fatal("Stop of a stopped or fired timer = true")
	}
	if n := c.Advance(2 * time.Hour); n != 0 {
		t.Fatalf("stopped timer fired (%d)", n)
	}
	if c.Created() != 2 || c.Active() != 0 {
		t.Fatalf("Created=%d Active=%d, want 2, 0", c.Created(), c.Active())
	}
}

func TestSetMovesWallClockOnly(t *testing.T) {
	c := NewClock(t0)
	tm := c.NewTimer(time.Minute)
	c.Set(t0.Add(24 * time.Hour))
	if got := c.Now(); !got.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("Now = %v after Set", got)
	}
	if _, ok := fired(tm); ok {
		t.Fatal("a wall-clock step fired a timer")
	}
	c.Set(t0.Add(-time.Hour))
	c.Advance(time.Minute)
	want := t0.Add(-time.Hour + time.Minute)
	if v, ok := fired(tm); !ok || !v.Equal(want) {
		t.Fatalf("timer after Advance: fired=%v at %v, want at %v", ok, v, want)
	}
	if n := c.Advance(-time.Hour); n != 0 || !c.Now().Equal(want) {
		t.Fatalf("negative Advance changed the clock: now %v", c.Now())
	}
}

func TestZeroTimerFiresAtOnce(t *testing.T) {
	c := NewClock(t0)
	if _, ok := fired(c.NewTimer(0)); !ok {
		t.Fatal("NewTimer(0) did not fire at once")
	}
}

func TestWait(t *testing.T) {
	c := NewClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.WaitCreated(ctx, 1) }()
	c.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("WaitCreated: %v", err)
	}
	go func() { done <- c.WaitActive(ctx, 0) }()
	c.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("WaitActive: %v", err)
	}
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := c.WaitCreated(short, 5); err == nil {
		t.Fatal("WaitCreated with a done ctx returned nil")
	}
}
