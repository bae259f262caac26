package agent

import (
	"context"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/pstat"
	"github.com/ocfupdate/ocfupdate/internal/schedule"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// progressInterval bounds progress notifications to a few per second.
const progressInterval = 250 * time.Millisecond

// buildServer creates the OCF server with the core resources, the software
// update resource and pstat, and the scheduler that feeds the loop.
func (a *Agent) buildServer() error {
	date := ""
	if !a.cfg.Device.ManufacturingDate.IsZero() {
		date = a.cfg.Device.ManufacturingDate.UTC().Format(time.DateOnly)
	}
	srv, err := ocf.NewServer(ocf.Config{
		Logger:     a.log,
		Multicast:  a.cfg.Multicast,
		Authorizer: a.cfg.Authorizer,
		Device: ocf.DeviceInfo{ID: a.st.Identity.DI, Name: a.cfg.Device.Name, PIID: a.st.Identity.PIID,
			Model: a.cfg.Device.Model, SoftwareVersion: a.st.installedVersion(a.cfg)},
		Platform: ocf.PlatformInfo{ID: a.st.Identity.PI, ManufacturerName: a.cfg.Device.Manufacturer,
			ModelNumber: a.cfg.Device.Model, ManufactureDate: date},
	})
	if err != nil {
		return err
	}
	res := swu.NewResource(a.cfg.Href, swuController{a}, swu.ResourceOptions{
		Parse: swu.ParseOptions{}, Now: a.clock.Now})
	if err := srv.Handle(res); err != nil {
		return err
	}
	if err := srv.Handle(pstat.NewResource(pstatController{a})); err != nil {
		return err
	}
	a.srv = srv
	a.sched = schedule.New(a.clock, func(e schedule.Entry) {
		s := scheduled{Action: swu.Action(e.Action), At: e.At}
		a.post(func(ctx context.Context) error { return a.fire(ctx, s) })
	})
	return nil
}

func (a *Agent) entry(s scheduled) schedule.Entry {
	return schedule.Entry{Action: string(s.Action), At: s.At}
}

// swuController and pstatController adapt the agent to the two resources'
// controller interfaces (both have a Snapshot method).
type swuController struct{ a *Agent }

func (c swuController) Snapshot() swu.Properties {
	c.a.viewMu.RLock()
	defer c.a.viewMu.RUnlock()
	p := c.a.view
	if c.a.progress != nil {
		pr := *c.a.progress
		p.Progress = &pr
	}
	return p
}

func (c swuController) Apply(ctx context.Context, u swu.Update) error { return c.a.Apply(ctx, u) }

type pstatController struct{ a *Agent }

func (c pstatController) Snapshot() pstat.Properties {
	c.a.viewMu.RLock()
	defer c.a.viewMu.RUnlock()
	return c.a.pview
}

func (c pstatController) Trigger(ctx context.Context, act swu.Action) error {
	return c.a.Trigger(ctx, act)
}

// refreshView rebuilds what GET serves from the persisted state.
func (a *Agent) refreshView() {
	st := a.st
	action := st.Machine.Goal
	if st.Schedule != nil {
		action = st.Schedule.Action
	}
	v := swu.Properties{
		NV:         st.NV,
		PURL:       st.PURL,
		Action:     action,
		State:      st.Machine.State,
		Result:     st.Machine.Result,
		LastUpdate: st.LastUpdate,
		Signed:     "vendor",
		UpdateTime: st.UpdateTime,
		Detail:     st.Detail,
		Name:       a.cfg.Device.Name,
	}
	pv := pstat.Defaults()
	pv.CM = pstat.CMForState(st.CMOther, st.Machine.State)
	pv.TM = pstat.TMForAction(action)
	a.viewMu.Lock()
	a.view, a.pview = v, pv
	a.viewMu.Unlock()
}

// publish refreshes the view after a commit and notifies the observers of
// each resource whose representation changed.
func (a *Agent) publish(old persisted) {
	// /oic/d first: a client told "result 1" must find the new sv there.
	if sv := a.st.installedVersion(a.cfg); sv != old.installedVersion(a.cfg) {
		if err := a.srv.SetSoftwareVersion(sv); err != nil {
			a.log.Error("set sv", "err", err)
		}
	}
	a.viewMu.RLock()
	oldView, oldP := a.view, a.pview
	a.viewMu.RUnlock()
	a.refreshView()
	a.viewMu.RLock()
	changed, pChanged := a.view != oldView, a.pview != oldP
	a.viewMu.RUnlock()
	if changed {
		a.srv.Notify(a.cfg.Href)
	}
	if pChanged {
		a.srv.Notify(pstat.Href)
	}
}

// setProgress sets or clears the progress property; clearing notifies at once.
func (a *Agent) setProgress(p *swu.Progress) {
	a.viewMu.Lock()
	had := a.progress != nil
	a.progress = p
	a.viewMu.Unlock()
	if had && p == nil {
		a.srv.Notify(a.cfg.Href)
	}
}

// progressFunc reports a step's progress to observers, at most a few times
// a second, and always the final figure.
func (a *Agent) progressFunc() func(done, total int64) {
	return func(done, total int64) {
		now := a.clock.Now()
		a.viewMu.Lock()
		a.progress = &swu.Progress{Done: done, Total: total}
		send := now.Sub(a.lastProg) >= progressInterval || done == total
		if send {
			a.lastProg = now
		}
		a.viewMu.Unlock()
		if send {
			a.srv.Notify(a.cfg.Href)
		}
	}
}
