package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Via is how a rollout starts the upgrade on a device.
type Via string

const (
	// ViaResource writes purl, swupdateaction "upgrade" and updatetime to
	// the software update resource in one UPDATE.
	ViaResource Via = "resource"
	// ViaPstat writes purl to the software update resource, then tm bit
	// 128 to /oic/sec/pstat. It cannot schedule (no At).
	ViaPstat Via = "pstat"
)

// RolloutConfig configures Rollout and PlanRollout.
type RolloutConfig struct {
	// PURL is the package URL (the TUF repository) given to every device.
	// Required.
	PURL string
	// Version is the version being rolled out. Devices whose sv already is
	// Version are skipped without being touched, and a device that ends on
	// another version counts as failed. Empty: learnt from the first device
	// that succeeds (its sv afterwards); devices started later are then
	// skipped when they already run it.
	Version string
	// Waves are the cumulative wave sizes. Default DefaultWaves.
	Waves []WaveSize
	// Concurrency is how many devices update at once within a wave.
	// Default 1.
	Concurrency int
	// MaxFailures is the failures tolerated before the rollout halts. The
	// zero value halts at the first failure.
	MaxFailures Threshold
	// At schedules the first devices' upgrade at this time (updatetime), so
	// that a rollout prepared in the evening starts at night; devices
	// started once it has passed run at once. Zero: now.
	At time.Time
	// Via picks the trigger. Default ViaResource.
	Via Via
	// DeviceTimeout bounds one device's update, from the time it starts
	// (or At). Default 30 minutes.
	DeviceTimeout time.Duration
	// Watch tunes how devices are followed.
	Watch WatchOptions
	// Security, when set, talks to the devices over CoAPs (OpenSecure).
	Security *Security
	// OnEvent, if set, is told about waves starting, devices changing and
	// the rollout halting. Calls are serialised; keep it quick.
	OnEvent func(RolloutEvent)
}

func (c *RolloutConfig) setDefaults() {
	if len(c.Waves) == 0 {
		c.Waves = DefaultWaves
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Via == "" {
		c.Via = ViaResource
	}
	if c.DeviceTimeout <= 0 {
		c.DeviceTimeout = 30 * time.Minute
	}
}

func (c *RolloutConfig) validate() error {
	var errs []error
	if c.PURL == "" {
		errs = append(errs, errors.New("no package URL (purl)"))
	}
	if c.Via != ViaResource && c.Via != ViaPstat {
		errs = append(errs, fmt.Errorf("via %q: want resource or pstat", c.Via))
	}
	if c.Via == ViaPstat && !c.At.IsZero() {
		errs = append(errs, errors.New("a pstat trigger runs at once: it cannot be scheduled"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	return nil
}

// RolloutEventKind says what a RolloutEvent reports.
type RolloutEventKind string

const (
	EventPlan   RolloutEventKind = "plan"   // devices read, waves planned: Plan
	EventWave   RolloutEventKind = "wave"   // a wave starts: Wave, Devices
	EventDevice RolloutEventKind = "device" // a device started, progressed or finished: Device, Status
	EventHalt   RolloutEventKind = "halt"   // the rollout halts: Reason
)

// RolloutEvent is a step of a rollout, for live views.
type RolloutEvent struct {
	Kind    RolloutEventKind
	Wave    int
	Devices int          // EventWave: devices in the wave
	Device  DeviceReport // EventDevice: a copy; Outcome "" while it runs
	Status  *Status      // EventDevice: the latest representation, if any
	Reason  string       // EventHalt
	Plan    *Report      // EventPlan: a copy of the report before any device starts
}

// rollout is one run: the report under construction and the bookkeeping
// shared by the device workers.
type rollout struct {
	cfg   RolloutConfig
	waves [][]int // indices into rep.Devices

	mu       sync.Mutex // guards rep, failures, and serialises OnEvent
	rep      *Report
	failures int
}

// PlanRollout reads every device's /oic/d (only GETs: nothing changes)
// and returns the plan as a report with DryRun set: every device is
// not-started with its wave, or skipped when it already runs Version.
func PlanRollout(ctx context.Context, cfg RolloutConfig, endpoints []string) (*Report, error) {
	r, err := newRollout(ctx, cfg, endpoints)
	if err != nil {
		return nil, err
	}
	r.rep.DryRun = true
	r.finish(ctx)
	return r.rep, nil
}

// Rollout upgrades the devices at endpoints wave by wave: each wave's
// devices, up to Concurrency at a time, and the next wave only once the
// previous one has finished. When failures exceed MaxFailures it halts:
// devices running finish, no new one starts, and the report says why.
// Cancelling ctx (Ctrl-C) also stops starting devices; those running are
// no longer followed and are reported cancelled. The error is for a bad
// configuration only: device failures are in the report.
func Rollout(ctx context.Context, cfg RolloutConfig, endpoints []string) (*Report, error) {
	r, err := newRollout(ctx, cfg, endpoints)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	plan := *r.rep
	plan.Devices = append([]DeviceReport(nil), r.rep.Devices...)
	plan.Waves = append([]WaveReport(nil), r.rep.Waves...)
	plan.recount()
	r.emit(RolloutEvent{Kind: EventPlan, Plan: &plan})
	r.mu.Unlock()
	for w, wave := range r.waves {
		if r.stopped(ctx) {
			break
		}
		r.runWave(ctx, w, wave)
	}
	r.finish(ctx)
	return r.rep, nil
}

// newRollout validates cfg, reads every device and plans the waves.
func newRollout(ctx context.Context, cfg RolloutConfig, endpoints []string) (*rollout, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		return nil, errors.New("rollout: no devices")
	}
	rep := &Report{PURL: cfg.PURL, Version: cfg.Version, Via: string(cfg.Via), Concurrency: cfg.Concurrency,
		MaxFailures: cfg.MaxFailures.String(), Started: time.Now().UTC()}
	if cfg.Version != "" {
		rep.VersionSource = "given"
	}
	if !cfg.At.IsZero() {
		at := cfg.At.UTC()
		rep.At = &at
	}
	rep.Devices = inspect(ctx, endpoints, cfg.Security, max(cfg.Concurrency, 16), cfg.Watch.withDefaults().RequestTimeout)
	var todo []int
	for i := range rep.Devices {
		d := &rep.Devices[i]
		if cfg.Version != "" && d.FromVersion == cfg.Version {
			d.Outcome, d.Version, d.Detail = OutcomeSkipped, cfg.Version, "already on version "+cfg.Version
			continue
		}
		todo = append(todo, i)
	}
	rep.FailureLimit = cfg.MaxFailures.Limit(len(todo))
	r := &rollout{cfg: cfg, rep: rep}
	for w, wave := range planIndices(todo, cfg.Waves) {
		for _, i := range wave {
			rep.Devices[i].Wave = w + 1
		}
		rep.Waves = append(rep.Waves, WaveReport{Wave: w + 1, Devices: len(wave)})
		r.waves = append(r.waves, wave)
	}
	return r, nil
}

// planIndices is PlanWaves over device indices.
func planIndices(idx []int, sizes []WaveSize) [][]int {
	names := make([]string, len(idx))
	waves := PlanWaves(names, sizes)
	out := make([][]int, 0, len(waves))
	done := 0
	for _, w := range waves {
		out = append(out, idx[done:done+len(w)])
		done += len(w)
	}
	return out
}

// inspect reads /oic/d of every device, concurrently; a device that cannot
// be read keeps its endpoint and the error, and fails when its turn comes.
func inspect(ctx context.Context, endpoints []string, sec *Security, conc int, timeout time.Duration) []DeviceReport {
	out := make([]DeviceReport, len(endpoints))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		out[i].Endpoint = ep
		if scheme, addr, err := SplitEndpoint(ep); err == nil {
			out[i].Endpoint = scheme + "://" + addr
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			d, err := OpenSecure(rctx, ep, sec)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			defer d.Close()
			info, err := d.Info(rctx)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].ID, out[i].Name, out[i].Model, out[i].FromVersion = info.ID, info.Name, info.Model, info.SoftwareVersion
		}()
	}
	wg.Wait()
	return out
}

// stopped reports whether no further device may start.
func (r *rollout) stopped(ctx context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ctx.Err() != nil || r.rep.Halted
}

// emit calls OnEvent; the caller holds r.mu.
func (r *rollout) emit(e RolloutEvent) {
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

func (r *rollout) runWave(ctx context.Context, w int, wave []int) {
	now := time.Now().UTC()
	r.mu.Lock()
	r.rep.Waves[w].Started = &now
	r.emit(RolloutEvent{Kind: EventWave, Wave: w + 1, Devices: len(wave)})
	r.mu.Unlock()

	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, i := range wave {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if r.stopped(ctx) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.runDevice(ctx, i)
		}()
	}
	wg.Wait()
	end := time.Now().UTC()
	r.mu.Lock()
	r.rep.Waves[w].Finished = &end
	r.mu.Unlock()
}

// finish marks the devices that never started and totals the outcomes.
func (r *rollout) finish(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.rep.Devices {
		if r.rep.Devices[i].Outcome == "" {
			r.rep.Devices[i].Outcome = OutcomeNotStarted
		}
	}
	r.rep.recount()
	if !r.rep.DryRun && ctx.Err() != nil && (r.rep.Counts.NotStarted > 0 || r.rep.Counts.Cancelled > 0) {
		r.rep.Cancelled = true
	}
	r.rep.Finished = time.Now().UTC()
}

// update records a change of device i and tells OnEvent.
func (r *rollout) update(i int, s *Status, f func(d *DeviceReport)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := &r.rep.Devices[i]
	f(d)
	if s != nil {
		d.State = s.State
	}
	r.emit(RolloutEvent{Kind: EventDevice, Wave: d.Wave, Device: *d, Status: s})
}

// runDevice updates one device and records its outcome, counting a
// failure against the threshold.
func (r *rollout) runDevice(ctx context.Context, i int) {
	start := time.Now().UTC()
	r.update(i, nil, func(d *DeviceReport) { d.Started = &start })
	res := r.upgrade(ctx, i)
	end := time.Now().UTC()

	r.mu.Lock()
	defer r.mu.Unlock()
	d := &r.rep.Devices[i]
	d.Finished, d.Seconds = &end, end.Sub(start).Seconds()
	d.Outcome, d.Detail, d.Error = res.outcome, res.detail, res.err
	if res.status != nil {
		result := res.status.Result
		d.Result, d.State = &result, res.status.State
	}
	if res.version != "" {
		d.Version = res.version
	}
	if res.outcome == OutcomeSucceeded && r.rep.Version == "" {
		r.rep.Version, r.rep.VersionSource = res.version, "learnt"
	}
	if res.outcome == OutcomeFailed {
		r.failures++
		if r.failures > r.rep.FailureLimit && !r.rep.Halted {
			r.rep.Halted = true
			r.rep.HaltReason = fmt.Sprintf("%d device(s) failed, more than the %d tolerated (--max-failures %s); last: %s: %s",
				r.failures, r.rep.FailureLimit, r.rep.MaxFailures, d.Endpoint, firstNonEmpty(d.Error, d.Detail))
			r.emit(RolloutEvent{Kind: EventDevice, Wave: d.Wave, Device: *d, Status: res.status})
			r.emit(RolloutEvent{Kind: EventHalt, Reason: r.rep.HaltReason})
			return
		}
	}
	r.emit(RolloutEvent{Kind: EventDevice, Wave: d.Wave, Device: *d, Status: res.status})
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// deviceResult is how one device's update ended.
type deviceResult struct {
	outcome Outcome
	status  *Status
	version string // sv afterwards, when read
	detail  string
	err     string
}

// target is the version being rolled out, given or learnt so far.
func (r *rollout) target() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rep.Version
}

// upgrade runs the whole exchange with device i: connect, skip if already
// on the target, ask for the upgrade, follow it to the end, and judge it.
func (r *rollout) upgrade(ctx context.Context, i int) deviceResult {
	r.mu.Lock()
	ep := r.rep.Devices[i].Endpoint
	r.mu.Unlock()
	failed := func(err error) deviceResult {
		if ctx.Err() != nil {
			return deviceResult{outcome: OutcomeCancelled, detail: "interrupted before the device was asked"}
		}
		return deviceResult{outcome: OutcomeFailed, err: err.Error()}
	}
	rt := r.cfg.Watch.withDefaults().RequestTimeout
	octx, cancel := context.WithTimeout(ctx, rt)
	defer cancel()
	d, err := OpenSecure(octx, ep, r.cfg.Security)
	if err != nil {
		return failed(err)
	}
	defer d.Close()
	info, err := d.Info(octx)
	if err != nil {
		return failed(err)
	}
	r.update(i, nil, func(dr *DeviceReport) {
		dr.ID, dr.Name, dr.Model, dr.FromVersion = info.ID, info.Name, info.Model, info.SoftwareVersion
	})
	if t := r.target(); t != "" && info.SoftwareVersion == t {
		return deviceResult{outcome: OutcomeSkipped, version: t, detail: "already on version " + t}
	}
	at := r.cfg.At
	if !at.After(time.Now()) {
		at = time.Time{}
	}
	purl := r.cfg.PURL
	u := Update{PURL: &purl, Action: ActionUpgrade}
	if !at.IsZero() {
		u.At = &at
	}
	if r.cfg.Via == ViaPstat {
		u.Action = ""
	}
	if _, err := d.Update(octx, u); err != nil {
		return failed(err)
	}
	if r.cfg.Via == ViaPstat {
		if err := d.Trigger(octx, ActionUpgrade); err != nil {
			return failed(err)
		}
	}
	cancel()

	deadline := time.Now().Add(r.cfg.DeviceTimeout)
	if !at.IsZero() {
		deadline = at.Add(r.cfg.DeviceTimeout)
	}
	wctx, wcancel := context.WithDeadline(ctx, deadline)
	defer wcancel()
	final, err := d.Wait(wctx, r.cfg.Watch, func(e Event) {
		if e.Err == nil {
			s := e.Status
			r.update(i, &s, func(*DeviceReport) {})
		}
	})
	switch {
	case err == nil || errors.Is(err, ErrUpdateFailed):
	case ctx.Err() != nil:
		return deviceResult{outcome: OutcomeCancelled, status: &final,
			detail: "interrupted while the device was updating; it goes on by itself (last state " + final.State + ")"}
	default:
		return deviceResult{outcome: OutcomeFailed, status: &final,
			err: fmt.Sprintf("no result within %s: %v", r.cfg.DeviceTimeout, err)}
	}
	return r.judge(ctx, d, final, info.SoftwareVersion, rt)
}

// judge decides the outcome of a finished update from its result and the
// version the device reports afterwards.
func (r *rollout) judge(ctx context.Context, d *Device, final Status, from string, rt time.Duration) deviceResult {
	res := deviceResult{status: &final, detail: final.Detail}
	if final.Failed() {
		res.outcome = OutcomeFailed
		return res
	}
	t := r.target()
	ictx, cancel := context.WithTimeout(ctx, rt)
	defer cancel()
	var info DeviceInfo
	for attempt := 0; ; attempt++ {
		var err error
		if info, err = d.Info(ictx); err != nil {
			res.outcome, res.err = OutcomeFailed, "read the version after the update: "+err.Error()
			return res
		}
		// A device may publish result 1 an instant before its /oic/d
		// shows the new sv: give it a moment before judging.
		stale := final.Result == ResultSuccess && (info.SoftwareVersion == from || (t != "" && info.SoftwareVersion != t))
		if !stale || attempt >= 10 {
			break
		}
		select {
		case <-ictx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.version = info.SoftwareVersion
	switch {
	case final.Result == ResultSuccess && (t == "" || info.SoftwareVersion == t):
		res.outcome = OutcomeSucceeded
	case final.Result == ResultSuccess:
		res.outcome = OutcomeFailed
		res.err = fmt.Sprintf("installed version %s, not the rollout's version %s", info.SoftwareVersion, t)
	case t == "" || info.SoftwareVersion == t:
		res.outcome = OutcomeSkipped // nothing newer: already up to date
	default:
		res.outcome = OutcomeFailed
		res.err = fmt.Sprintf("the repository offers nothing newer than %s; the rollout's version is %s", info.SoftwareVersion, t)
	}
	return res
}
