package coaprun

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRunner(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := New(time.Millisecond)
	var calls, done atomic.Int32
	r.Func(func(time.Time) bool { calls.Add(1); return true })
	r.Func(func(time.Time) bool { done.Add(1); return false }) // ends by itself
	for calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	r.Stop()
	n := calls.Load()
	time.Sleep(5 * time.Millisecond)
	if calls.Load() != n || done.Load() != 1 {
		t.Fatalf("after Stop: %d→%d calls, %d of the self-ending one", n, calls.Load(), done.Load())
	}
	r.Func(func(time.Time) bool { t.Error("ran after Stop"); return true })
	r.Stop()
}
