package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/client"
)

// updateArgs are the arguments of "update".
type updateArgs struct {
	endpoint    string
	purl        string
	action      string
	at          string
	via         string
	wait        bool
	timeout     time.Duration
	reqTimeout  time.Duration
	interactive bool
	sec         securityFlags
}

func updateCmd(e *env) *cobra.Command {
	var a updateArgs
	var plain bool
	cmd := &cobra.Command{
		Use:   "update ENDPOINT --purl URL [--action isac|isvv|upgrade] [--at RFC3339|now] [--via resource|pstat] [--wait]",
		Short: "Ask one device to check for, download or install an update",
		Long: `Set the device's package URL (purl) and ask for an action: isac (check for a
newer version), isvv (also download and verify it) or upgrade (also install
it), now or at a time (updatetime, RFC 3339 with a zone).

--via resource (default) sends all of it in one UPDATE of the software update
resource. --via pstat sets purl there, then writes the action's bit to
/oic/sec/pstat tm (256 isac, 64 isvv, 128 upgrade), which runs at once.

Without --wait it prints the device's answer and exits 0 once the device has
accepted the request. With --wait it follows the update (a progress bar on a
terminal, plain lines elsewhere) to its end, prints a final line with the
result, and exits 0 on success (result 1, or 0 for a check), 1 on a failure
result, 4 if interrupted. A refusal is exit 1 with the device's diagnostic.`,
		Example: `  ocfupdate update coap://127.0.0.1:5683 --purl https://repo.example:8443 --wait
  ocfupdate update 192.0.2.10 --purl https://repo.example:8443 --action isvv --at 2030-01-09T02:00:00Z
  ocfupdate update 192.0.2.10 --purl https://repo.example:8443 --via pstat --wait -o json`,
		Args: positional("ENDPOINT"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.endpoint = pos[0]
			a.interactive = !plain && e.output == formatTable && isTerminal(e.stdout)
			return runUpdate(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.purl, "purl", "", "package `URL`: the TUF repository's base URL")
	f.StringVar(&a.action, "action", client.ActionUpgrade, "isac, isvv or upgrade")
	f.StringVar(&a.at, "at", "now", "when: RFC 3339 `TIME` with a zone, or now")
	f.StringVar(&a.via, "via", string(client.ViaResource), "trigger through the update resource or pstat tm: resource or pstat")
	f.BoolVar(&a.wait, "wait", false, "follow the update to its end and exit with its outcome")
	f.DurationVar(&a.timeout, "timeout", 30*time.Minute, "with --wait: give up after this long (exit 1)")
	f.DurationVar(&a.reqTimeout, "request-timeout", 5*time.Second, "time limit of each request to the device")
	f.BoolVar(&plain, "non-interactive", false, "print plain lines, even on a terminal")
	a.sec.register(f)
	markRequired(cmd, "purl")
	return cmd
}

// parseAt parses --at: "now" (zero time) or RFC 3339.
func parseAt(s string) (time.Time, error) {
	if s == "" || s == "now" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--at %q: want now or an RFC 3339 time with a zone, such as 2030-01-09T02:00:00Z", s)
	}
	return t, nil
}

func (a *updateArgs) validate() (time.Time, error) {
	switch a.action {
	case client.ActionCheck, client.ActionFetch, client.ActionUpgrade:
	default:
		return time.Time{}, usagef("--action %q: want isac, isvv or upgrade", a.action)
	}
	at, err := parseAt(a.at)
	if err != nil {
		return at, err
	}
	switch client.Via(a.via) {
	case client.ViaResource:
	case client.ViaPstat:
		if !at.IsZero() {
			return at, usagef("--via pstat runs at once: it cannot be combined with --at")
		}
	default:
		return at, usagef("--via %q: want resource or pstat", a.via)
	}
	if a.timeout <= 0 || a.reqTimeout <= 0 {
		return at, usagef("timeouts must be positive")
	}
	return at, nil
}

func runUpdate(ctx context.Context, e *env, a *updateArgs) error {
	at, err := a.validate()
	if err != nil {
		return err
	}
	if err := a.sec.checkEndpoint(a.endpoint); err != nil {
		return err
	}
	sec, err := a.sec.security()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, a.reqTimeout)
	defer cancel()
	d, err := client.OpenSecure(rctx, a.endpoint, sec)
	if err != nil {
		return err
	}
	defer d.Close()
	before, err := d.Info(rctx)
	if err != nil {
		return err
	}
	u := client.Update{PURL: &a.purl, Action: a.action}
	if !at.IsZero() {
		u.At = &at
	}
	if client.Via(a.via) == client.ViaPstat {
		u.Action = ""
	}
	s, err := d.Update(rctx, u)
	if err != nil {
		return err
	}
	if client.Via(a.via) == client.ViaPstat {
		if err := d.Trigger(rctx, a.action); err != nil {
			return err
		}
	}
	if !a.wait {
		j := deviceJSON{Endpoint: d.Endpoint(), Href: d.Href()}
		j.setStatus(s)
		return e.emit(j, func(w io.Writer) {
			fmt.Fprintf(w, "%s accepted %s: state %s, action %s, updatetime %s\n", d.Endpoint(), a.action, s.State, s.Action, s.UpdateTime)
		})
	}
	return waitUpdate(ctx, e, a, d, before.SoftwareVersion)
}

// waitUpdate follows the update to its end.
func waitUpdate(ctx context.Context, e *env, a *updateArgs, d *client.Device, from string) error {
	out := e.stdout
	if e.output == formatJSON {
		out = io.Discard // stdout carries only the final JSON
	}
	view := newLiveView(out, a.interactive)
	var prev *client.Status
	wctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	final, err := d.Wait(wctx, client.WatchOptions{RequestTimeout: a.reqTimeout}, func(ev client.Event) {
		switch {
		case a.interactive:
			view.setRow("dev", deviceRow("", d.Endpoint(), ev.Status, ev.Err))
		case ev.Err != nil:
			view.println(fmt.Sprintf("%s %s unreachable (retrying): %s", ev.Time.Format("15:04:05"), d.Endpoint(), oneLine(ev.Err.Error())))
		case worthALine(prev, ev.Status):
			view.println(plainLine(d.Endpoint(), ev.Status))
		}
		if ev.Err == nil {
			s := ev.Status
			prev = &s
		}
	})
	view.close()
	switch {
	case ctx.Err() != nil:
		return withCode(exitInterrupted, fmt.Errorf("interrupted: %s is still %s; it goes on by itself", d.Endpoint(), final.State))
	case err != nil && !errors.Is(err, client.ErrUpdateFailed):
		return fmt.Errorf("no result within %s: %w", a.timeout, err)
	}
	info, ierr := infoAfter(ctx, d, final, from, a.reqTimeout)
	j := deviceJSON{Endpoint: d.Endpoint(), Href: d.Href(), ID: info.ID, Name: info.Name, Model: info.Model,
		Version: info.SoftwareVersion}
	j.setStatus(final)
	if ierr != nil {
		j.Error = oneLine(ierr.Error())
	}
	if perr := e.emit(j, func(w io.Writer) { fmt.Fprintln(w, finalLine(d.Endpoint(), final, info.SoftwareVersion)) }); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("%s: result %d (%s): %s", d.Endpoint(), final.Result, client.ResultText(final.Result), final.Detail)
	}
	return nil
}

// infoAfter reads /oic/d after an update. A device may publish result 1 an
// instant before /oic/d shows the new sv, so a success still showing the
// old version is read again a few times.
func infoAfter(ctx context.Context, d *client.Device, final client.Status, from string, timeout time.Duration) (client.DeviceInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		info, err := d.Info(ctx)
		if err != nil || final.Result != client.ResultSuccess || info.SoftwareVersion != from || attempt >= 10 {
			return info, err
		}
		select {
		case <-ctx.Done():
			return info, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// finalLine sums up a finished update in one line.
func finalLine(ep string, s client.Status, sv string) string {
	verdict := "done" // a check or download that ended without installing
	switch {
	case s.Failed():
		verdict = "FAILED"
	case s.Result == client.ResultSuccess:
		verdict = "succeeded"
	}
	l := fmt.Sprintf("%s: %s: result %d (%s), version %s", ep, verdict, s.Result, client.ResultText(s.Result), dash(sv))
	if s.NV != "" {
		l += ", available " + s.NV
	}
	if s.Detail != "" {
		l += ": " + strings.TrimSuffix(s.Detail, ".")
	}
	return l
}
