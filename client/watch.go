package client

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Event is one thing a Watch or Wait saw: a representation of the software
// update resource, or an error reaching the device (Err set, Status the
// last one known). Errors are not fatal: the watch dials again and goes on.
type Event struct {
	Time   time.Time
	Status Status
	Err    error
}

// WatchOptions tunes Watch and Wait. The zero value is usable.
type WatchOptions struct {
	// Poll is how often the resource is also read, in case notifications
	// stop (the device restarted and forgot its observers, or dropped a
	// slow one). A read's status is delivered only when no notification
	// came since the previous read, so events keep the device's order.
	// Default 1s.
	Poll time.Duration
	// RequestTimeout bounds each read and each dial. Default 5s.
	RequestTimeout time.Duration
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	return o
}

// Watch calls fn with the resource's representation whenever it changes
// (Observe, plus a periodic read), and with an Event carrying Err when the
// device cannot be reached, until ctx is done or fn returns false. The
// connection is dialled again after any error. It returns the last status
// seen, and nil when fn stopped it or ctx.Err() otherwise.
func (d *Device) Watch(ctx context.Context, opts WatchOptions, fn func(Event) bool) (Status, error) {
	opts = opts.withDefaults()
	notes := make(chan Status, 64)
	var (
		obs      Observation
		obsConn  *Conn
		last     Status
		haveLast bool
		lastErr  string
		// heard is set by each notification and cleared by each read.
		// While notifications flow they alone are delivered: the device
		// sends every state in order, and a read that overtook a queued
		// notification would show the states out of order.
		heard bool
	)
	defer func() { cancelQuietly(obs) }()

	// deliver hands a status to fn unless it is the same as the last one.
	deliver := func(s Status) bool {
		if haveLast && reflect.DeepEqual(s, last) {
			return true
		}
		last, haveLast, lastErr = s, true, ""
		return fn(Event{Time: time.Now(), Status: s})
	}
	fail := func(err error) bool {
		if err.Error() == lastErr {
			return true // one event per distinct error, not one per poll
		}
		lastErr = err.Error()
		return fn(Event{Time: time.Now(), Status: last, Err: err})
	}
	// observe (re)registers when there is no observation on the current
	// connection.
	observe := func() {
		d.mu.Lock()
		cur := d.conn
		d.mu.Unlock()
		if obs != nil && obsConn == cur && cur != nil && !cur.Broken() {
			return
		}
		cancelQuietly(obs)
		obs, obsConn = nil, nil
		rctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
		defer cancel()
		o, err := d.Observe(rctx, func(s Status, err error) {
			if err != nil {
				return // the periodic read reports errors
			}
			select {
			case notes <- s:
			default: // the reader is behind; the next read catches up
			}
		})
		if err != nil {
			return
		}
		d.mu.Lock()
		obs, obsConn = o, d.conn
		d.mu.Unlock()
	}
	poll := func() bool {
		rctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
		defer cancel()
		s, err := d.Status(rctx)
		if err != nil {
			if ctx.Err() != nil {
				return true
			}
			return fail(err)
		}
		flowing := heard && obs != nil
		heard = false
		if lastErr == "" && flowing {
			observe()
			return true
		}
		if obs != nil && haveLast && !reflect.DeepEqual(s, last) {
			// The state changed and no notification told: the device
			// has most likely restarted and forgotten the observation.
			// Register again (a spurious new registration costs one
			// exchange; a dead one costs every change until the end).
			cancelQuietly(obs)
			obs, obsConn = nil, nil
		}
		if !deliver(s) {
			return false
		}
		observe()
		return true
	}

	t := time.NewTicker(opts.Poll)
	defer t.Stop()
	if !poll() {
		return last, nil
	}
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case s := <-notes:
			heard = true
			if !deliver(s) {
				return last, nil
			}
		case <-t.C:
			if !poll() {
				return last, nil
			}
		}
	}
}

// Events is Watch with a channel: it delivers events until ctx is done and
// then closes the channel. The caller must keep reading until then.
func (d *Device) Events(ctx context.Context, opts WatchOptions) <-chan Event {
	ch := make(chan Event)
	go func() {
		defer close(ch)
		_, _ = d.Watch(ctx, opts, func(e Event) bool {
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch
}

// ErrUpdateFailed is wrapped by the error Wait returns when the action
// ended with a failure result (2–8, 400–599).
var ErrUpdateFailed = errors.New("update failed")

// Wait follows the resource until the action in progress (or scheduled)
// has finished (Status.Finished), calling progress, if not nil, with every
// event on the way, and returns the final status. A failure result is
// returned as an error wrapping ErrUpdateFailed, with the status. Errors
// reaching the device are retried until ctx ends; a device that restarts
// into its new version is followed transparently.
func (d *Device) Wait(ctx context.Context, opts WatchOptions, progress func(Event)) (Status, error) {
	var final *Status
	last, err := d.Watch(ctx, opts, func(e Event) bool {
		if progress != nil {
			progress(e)
		}
		if e.Err == nil && e.Status.Finished() {
			s := e.Status
			final = &s
			return false
		}
		return true
	})
	if final == nil {
		if err == nil {
			err = ctx.Err()
		}
		return last, fmt.Errorf("wait for %s: %w", d.endpoint, err)
	}
	if final.Failed() {
		return *final, fmt.Errorf("%s: %w: result %d (%s): %s", d.endpoint, ErrUpdateFailed,
			final.Result, ResultText(final.Result), final.Detail)
	}
	return *final, nil
}
