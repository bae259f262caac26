package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/ocfupdate/ocfupdate/internal/fsm"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// runEffect starts the work an effect names. Steps run on their own
// goroutine, one at a time; their outcome comes back to the loop as an
// event tagged with the job's generation, so the outcome of a cancelled
// step can never be taken for the outcome of a later one.
func (a *Agent) runEffect(ctx context.Context, e fsm.Effect) {
	switch e {
	case fsm.StartCheck, fsm.StartFetch, fsm.StartInstall, fsm.ConfirmInstall:
		a.startJob(ctx, e, a.st.clone())
	case fsm.CancelWork:
		a.cancelJob()
	case fsm.Discard:
		a.cancelJob()
		if err := a.steps.fetcher.Discard(); err != nil {
			a.log.Warn("discard staged package", "err", err)
		}
	}
}

func (a *Agent) cancelJob() {
	if a.jobCancel != nil {
		a.jobCancel()
		a.jobCancel = nil
	}
}

func (a *Agent) startJob(ctx context.Context, e fsm.Effect, st persisted) {
	a.cancelJob()
	a.jobGen++
	gen := a.jobGen
	jctx, cancel := context.WithCancel(ctx)
	a.jobCancel = cancel
	a.jobs.Add(1)
	go func() {
		defer a.jobs.Done()
		defer cancel()
		ev, mutate := a.runStep(jctx, e, st)
		if jctx.Err() != nil {
			return // cancelled: whoever cancelled decided what happens next
		}
		a.post(func(ctx context.Context) error {
			if gen != a.jobGen {
				return nil // a newer job replaced this one
			}
			a.jobCancel = nil
			a.setProgress(nil)
			return a.transition(ctx, ev, mutate)
		})
	}()
}

// runStep runs one step with a snapshot of the state and returns the event
// that reports its outcome and the property changes that go with it.
func (a *Agent) runStep(ctx context.Context, e fsm.Effect, st persisted) (fsm.Event, func(*persisted)) {
	req := step.CheckRequest{Model: a.cfg.Device.Model, InstalledVersion: st.installedVersion(a.cfg),
		InstalledCounter: st.InstalledCounter}
	failKind := map[fsm.Effect]fsm.EventKind{
		fsm.StartCheck: fsm.EvCheckFailed, fsm.StartFetch: fsm.EvFetchFailed,
		fsm.StartInstall: fsm.EvInstallFailed, fsm.ConfirmInstall: fsm.EvInstallFailed,
	}[e]
	if e == fsm.StartCheck || e == fsm.StartFetch {
		u, res, why := swu.ResolvePURL(st.PURL, a.cfg.Device.VendorURL, a.cfg.AllowInsecure)
		if res != swu.ResultIdle {
			return failure(failKind, &step.Error{Result: res, Detail: why})
		}
		req.PURL = u.String()
	}
	switch e {
	case fsm.StartCheck:
		t, found, err := a.steps.checker.Check(ctx, req)
		if err != nil {
			return failure(failKind, err)
		}
		if !found {
			return fsm.Event{Kind: fsm.EvCheckNone}, func(p *persisted) {
				p.Detail = fmt.Sprintf("no version newer than %s for model %s", req.InstalledVersion, req.Model)
			}
		}
		return fsm.Event{Kind: fsm.EvCheckFound}, func(p *persisted) {
			p.Target = t
			p.Detail = fmt.Sprintf("version %s is available", t.Version)
		}
	case fsm.StartFetch:
		staged, err := a.steps.fetcher.Fetch(ctx, req, st.Target, a.progressFunc())
		if errors.Is(err, step.ErrNothingNewer) {
			return fsm.Event{Kind: fsm.EvFetchNone}, func(p *persisted) {
				p.Detail = fmt.Sprintf("no version newer than %s for model %s", req.InstalledVersion, req.Model)
			}
		}
		if err != nil {
			return failure(failKind, err)
		}
		return fsm.Event{Kind: fsm.EvFetchDone}, func(p *persisted) {
			p.Staged = staged.Path
			p.Target = staged.Target
			p.NV = staged.Target.Version // known now when no check came first
			p.Detail = fmt.Sprintf("version %s downloaded and verified", staged.Target.Version)
		}
	case fsm.StartInstall:
		// An installer that restarts the agent never returns here; the new
		// process finds "upgrading" on disk and confirms (EvBoot). One that
		// returns nil has not restarted: confirm in this process.
		if err := a.steps.installer.Install(ctx, st.Staged, st.Target, a.progressFunc()); err != nil {
			return failure(failKind, err)
		}
		if err := a.steps.installer.Confirm(ctx, st.Target); err != nil {
			return failure(failKind, err)
		}
	case fsm.ConfirmInstall:
		if err := a.steps.installer.Confirm(ctx, st.Target); err != nil {
			return failure(failKind, err)
		}
	}
	return fsm.Event{Kind: fsm.EvInstallDone}, func(p *persisted) {
		p.Detail = fmt.Sprintf("updated to version %s", st.Target.Version)
	}
}

// failure turns a step's error into its event: a *step.Error names the
// result; anything else is an update failure (8).
func failure(kind fsm.EventKind, err error) (fsm.Event, func(*persisted)) {
	var se *step.Error
	if !errors.As(err, &se) {
		se = &step.Error{Result: swu.ResultUpdateFailed, Detail: "update failed", Err: err}
	}
	detail := se.Error()
	return fsm.Event{Kind: kind, Result: se.Result}, func(p *persisted) { p.Detail = detail }
}
