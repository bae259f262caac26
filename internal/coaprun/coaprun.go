// Package coaprun runs go-coap's periodic housekeeping (retransmissions,
// expirations) on goroutines that end when the owner says so. go-coap's
// default runner is a sleeping goroutine that outlives the connection;
// with this one, Stop ends every goroutine it started and waits for them,
// so an owner's Close leaks nothing.
package coaprun

import (
	"sync"
	"time"
)

// Runner is a go-coap periodic runner: pass Runner.Func to
// options.WithPeriodicRunner.
type Runner struct {
	tick time.Duration
	stop chan struct{}

	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// New returns a Runner that calls each function every tick.
func New(tick time.Duration) *Runner {
	return &Runner{tick: tick, stop: make(chan struct{})}
}

// Func runs f every tick until f returns false or Stop is called. After
// Stop it runs nothing.
func (r *Runner) Func(f func(now time.Time) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.tick)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case now := <-t.C:
				if !f(now) {
					return
				}
			}
		}
	}()
}

// Stop ends the goroutines and waits for them. Calling it again does nothing.
func (r *Runner) Stop() {
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		close(r.stop)
	}
	r.mu.Unlock()
	r.wg.Wait()
}
