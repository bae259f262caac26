package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/client"
)

// watchArgs are the arguments of "watch".
type watchArgs struct {
	sel         selection
	endpoints   []string
	untilDone   bool
	poll        time.Duration
	interactive bool // false: plain lines even on a terminal
}

func watchCmd(e *env) *cobra.Command {
	var a watchArgs
	var plain bool
	cmd := &cobra.Command{
		Use:   "watch ENDPOINT... [--endpoints FILE] [--until-done]",
		Short: "Follow the update state of devices live",
		Long: `Follow devices live (Observe, plus a read every --poll in case a notification
is lost): state, action, result, a progress bar while downloading or
installing, and the device's detail. A device that restarts (into a new
version) or cannot be reached is dialled again until it answers.

On a terminal the rows are redrawn in place; otherwise (or with
--non-interactive) every change is one line, progress at most every 25%.
With --output json every change is one JSON object per line.

Runs until SIGINT/SIGTERM (exit 0), or with --until-done until no device has an
action pending or running: exit 0 if none ended with a failure result, else 1.`,
		Example: `  ocfupdate watch coap://127.0.0.1:5683
  ocfupdate watch --endpoints fleet.txt --until-done -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.endpoints = pos
			a.interactive = !plain && e.output == formatTable && isTerminal(e.stdout)
			return runWatch(cmd.Context(), e, &a)
		},
	}
	a.sel.register(cmd.Flags(), false)
	cmd.Flags().BoolVar(&a.untilDone, "until-done", false, "exit once no device has an action pending or running")
	cmd.Flags().DurationVar(&a.poll, "poll", time.Second, "also read every device this often")
	cmd.Flags().BoolVar(&plain, "non-interactive", false, "print plain lines, even on a terminal")
	return cmd
}

// watched is the last thing known about each device.
type watched struct {
	mu   sync.Mutex
	last map[string]*client.Status
}

func runWatch(ctx context.Context, e *env, a *watchArgs) error {
	eps, err := a.sel.endpoints(a.endpoints)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return usagef("no devices: give endpoints as arguments or with --endpoints")
	}
	if a.poll <= 0 {
		return usagef("--poll must be positive")
	}
	sec, err := a.sel.sec.security()
	if err != nil {
		return err
	}
	view := newLiveView(e.stdout, a.interactive)
	enc := json.NewEncoder(e.stdout)
	var outMu sync.Mutex
	w := &watched{last: map[string]*client.Status{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	report := func(ep, name string, ev client.Event) {
		w.mu.Lock()
		prev := w.last[ep]
		if ev.Err == nil {
			s := ev.Status
			w.last[ep] = &s
		}
		done := a.untilDone && len(w.last) == len(eps)
		for _, s := range w.last {
			done = done && s.Finished()
		}
		w.mu.Unlock()
		switch {
		case e.output == formatJSON:
			j := deviceJSON{Endpoint: ep, Name: name}
			if ev.Err != nil {
				j.Error = oneLine(ev.Err.Error())
			} else {
				j.setStatus(ev.Status)
			}
			outMu.Lock()
			_ = enc.Encode(struct {
				Time time.Time `json:"time"`
				deviceJSON
			}{ev.Time.UTC(), j})
			outMu.Unlock()
		case a.interactive:
			view.setRow(ep, deviceRow(name, ep, ev.Status, ev.Err))
		case ev.Err != nil:
			view.println(fmt.Sprintf("%s %s unreachable: %s", ev.Time.Format("15:04:05"), ep, oneLine(ev.Err.Error())))
		case worthALine(prev, ev.Status):
			view.println(plainLine(ep, ev.Status))
		}
		if done {
			cancel()
		}
	}

	for _, ep := range eps { // rows in the order given
		view.setRow(ep, fmt.Sprintf("%-16s %-26s connecting", "", ep))
	}
	var wg sync.WaitGroup
	for _, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchOne(ctx, ep, sec, client.WatchOptions{Poll: a.poll, RequestTimeout: a.sel.reqTimout}, report)
		}()
	}
	wg.Wait()
	view.close()
	if !a.untilDone {
		return nil // stopped by a signal: how watching ends
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	failed := 0
	for _, s := range w.last {
		if s.Failed() {
			failed++
		}
	}
	if len(w.last) < len(eps) || !allFinished(w.last) {
		return withCode(exitInterrupted, fmt.Errorf("interrupted before every device was done"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d device(s) ended with a failure result", failed, len(eps))
	}
	return nil
}

func allFinished(m map[string]*client.Status) bool {
	for _, s := range m {
		if !s.Finished() {
			return false
		}
	}
	return true
}

// watchOne follows one device until ctx ends, opening it again as long as
// it cannot be reached.
func watchOne(ctx context.Context, ep string, sec *client.Security, opts client.WatchOptions, report func(ep, name string, ev client.Event)) {
	name := ""
	for ctx.Err() == nil {
		octx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
		d, err := client.OpenSecure(octx, ep, sec)
		if err == nil {
			if info, ierr := d.Info(octx); ierr == nil {
				name = info.Name
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				report(ep, name, client.Event{Time: time.Now(), Err: err})
			}
			select {
			case <-ctx.Done():
			case <-time.After(opts.Poll):
			}
			continue
		}
		_, _ = d.Watch(ctx, opts, func(ev client.Event) bool {
			report(ep, name, ev)
			return true
		})
		d.Close()
	}
}
