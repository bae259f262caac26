package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/client"
)

// rolloutArgs are the arguments of "rollout".
type rolloutArgs struct {
	sel         selection
	purl        string
	version     string
	waves       string
	concurrency int
	maxFailures string
	at          string
	via         string
	dryRun      bool
	report      string
	timeout     time.Duration
	interactive bool
}

func rolloutCmd(e *env) *cobra.Command {
	var a rolloutArgs
	var plain bool
	cmd := &cobra.Command{
		Use:   "rollout --purl URL (--discover | --endpoints FILE) [--waves 1,10%,50%,100%] [--concurrency N] [--max-failures N|P%] [--at TIME] [--dry-run] --report FILE",
		Short: "Upgrade a fleet in waves, halting when too many devices fail",
		Long: `Upgrade every device to the newest package at --purl, wave by wave.

Waves are cumulative sizes: "1,10%,50%,100%" is a canary, then devices up to a
tenth of the fleet, half, and all (percentages round up; a wave with nothing
new is dropped; the last always takes the rest). Within a wave up to
--concurrency devices update at once; the next wave starts when the wave has
finished. When more devices have failed than --max-failures tolerates (a
count, or a percentage of the devices to update, rounded down; 0 halts at the
first failure), no further device starts, those running finish, and the
rollout halts, saying why.

The target version is --version, or else the version the first successful
device reports afterwards. Devices already on it are skipped without being
touched (with --version: before planning, so they take no place in a wave); a
device that ends on another version counts as failed.

--dry-run reads every device (GET only) and prints the plan. --at schedules
the first devices' upgrade at TIME; devices started after TIME run at once.
SIGINT/SIGTERM stops starting devices, stops following those running (the
report calls them cancelled; they go on by themselves) and writes the report.

The report (--report FILE, JSON; also stdout with -o json) lists every
device: wave, outcome (succeeded, failed, skipped, not-started, cancelled),
versions before and after, start and end times, result and detail.

Exit codes: 0 every device succeeded or was skipped (or a dry run), 1 some
failed within the threshold (or a device list could not be had), 2 usage, 3
halted at the threshold, 4 interrupted.`,
		Example: `  ocfupdate rollout --purl https://repo.example:8443 --discover --dry-run
  ocfupdate rollout --purl https://repo.example:8443 --endpoints fleet.txt \
      --waves 1,10%,50%,100% --concurrency 16 --max-failures 2% --report rollout.json`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.interactive = !plain && e.output == formatTable && isTerminal(e.stdout)
			return runRollout(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	a.sel.register(f, true)
	f.StringVar(&a.purl, "purl", "", "package `URL`: the TUF repository's base URL")
	f.StringVar(&a.version, "version", "", "target `VERSION` (default: learnt from the first device that succeeds)")
	f.StringVar(&a.waves, "waves", "1,10%,50%,100%", "cumulative wave `SIZES`: counts and percentages")
	f.IntVar(&a.concurrency, "concurrency", 4, "devices updating at once within a wave")
	f.StringVar(&a.maxFailures, "max-failures", "0", "failures tolerated before halting: `N` or P%")
	f.StringVar(&a.at, "at", "now", "start the first devices at `TIME` (RFC 3339) or now")
	f.StringVar(&a.via, "via", string(client.ViaResource), "trigger through the update resource or pstat tm: resource or pstat")
	f.BoolVar(&a.dryRun, "dry-run", false, "show the plan; change nothing")
	f.StringVar(&a.report, "report", "", "write the JSON report to `FILE` (required unless --dry-run)")
	f.DurationVar(&a.timeout, "timeout", 30*time.Minute, "give up on a device after this long")
	f.BoolVar(&plain, "non-interactive", false, "print plain lines, even on a terminal")
	markRequired(cmd, "purl")
	return cmd
}

func (a *rolloutArgs) config() (client.RolloutConfig, error) {
	cfg := client.RolloutConfig{PURL: a.purl, Version: a.version, Concurrency: a.concurrency,
		Via: client.Via(a.via), DeviceTimeout: a.timeout,
		Watch: client.WatchOptions{RequestTimeout: a.sel.reqTimout}}
	switch {
	case a.sel.discover == (a.sel.file != ""):
		return cfg, usagef("give exactly one of --discover and --endpoints")
	case !a.dryRun && a.report == "":
		return cfg, usagef("--report FILE is required (the record of what happened to every device)")
	case a.concurrency < 1:
		return cfg, usagef("--concurrency must be at least 1")
	case a.timeout <= 0 || a.sel.reqTimout <= 0:
		return cfg, usagef("timeouts must be positive")
	case cfg.Via != client.ViaResource && cfg.Via != client.ViaPstat:
		return cfg, usagef("--via %q: want resource or pstat", a.via)
	}
	var err error
	if cfg.Waves, err = client.ParseWaves(a.waves); err != nil {
		return cfg, usageError{err}
	}
	if cfg.MaxFailures, err = client.ParseThreshold(a.maxFailures); err != nil {
		return cfg, usageError{err}
	}
	if cfg.At, err = parseAt(a.at); err != nil {
		return cfg, err
	}
	if cfg.Via == client.ViaPstat && !cfg.At.IsZero() {
		return cfg, usagef("--via pstat runs at once: it cannot be combined with --at")
	}
	if cfg.Security, err = a.sel.sec.security(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func runRollout(ctx context.Context, e *env, a *rolloutArgs) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	eps, err := a.fleet(ctx)
	if err != nil {
		return err
	}
	live := e.stdout
	if e.output == formatJSON {
		live = io.Discard // stdout carries only the report
	}
	rep, err := executeRollout(ctx, live, a.interactive, cfg, eps, a.dryRun)
	if err != nil {
		return err
	}
	if a.report != "" {
		if err := writeReport(a.report, rep); err != nil {
			return err
		}
	}
	if err := e.emit(rep, func(w io.Writer) { reportTable(w, rep) }); err != nil {
		return err
	}
	if e.output == formatTable && a.report != "" {
		fmt.Fprintf(e.stdout, "report written to %s\n", a.report)
	}
	return rolloutExit(rep)
}

// fleet is the list of devices: the endpoints file, or those that answer
// multicast discovery.
func (a *rolloutArgs) fleet(ctx context.Context) ([]string, error) {
	if a.sel.file != "" {
		eps, err := a.sel.endpoints(nil)
		if err != nil {
			return nil, err
		}
		if len(eps) == 0 {
			return nil, fmt.Errorf("%s lists no devices", a.sel.file)
		}
		return eps, nil
	}
	found, err := a.sel.find(ctx, nil, true)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, errors.New("no device answered multicast discovery")
	}
	eps := make([]string, len(found))
	for i, d := range found {
		eps[i] = d.Endpoint
	}
	return eps, nil
}

// executeRollout runs (or plans) the rollout with the live view on w.
func executeRollout(ctx context.Context, w io.Writer, tty bool, cfg client.RolloutConfig, eps []string, dryRun bool) (*client.Report, error) {
	if dryRun {
		return client.PlanRollout(ctx, cfg, eps)
	}
	view := newRolloutView(w, tty)
	user := cfg.OnEvent
	cfg.OnEvent = func(ev client.RolloutEvent) {
		view.event(ev)
		if user != nil {
			user(ev)
		}
	}
	rep, err := client.Rollout(ctx, cfg, eps)
	view.finish()
	return rep, err
}

// rolloutExit maps a report to the documented exit codes.
func rolloutExit(rep *client.Report) error {
	c := rep.Counts
	switch {
	case rep.DryRun:
		return nil
	case rep.Cancelled:
		return withCode(exitInterrupted, fmt.Errorf("interrupted: %d succeeded, %d failed, %d cancelled, %d not started",
			c.Succeeded, c.Failed, c.Cancelled, c.NotStarted))
	case rep.Halted:
		return withCode(exitHalted, fmt.Errorf("rollout halted: %s", rep.HaltReason))
	case c.Failed > 0:
		return fmt.Errorf("%d device(s) failed (within the %d tolerated)", c.Failed, rep.FailureLimit)
	}
	return nil
}

// writeReport writes the report as indented JSON, atomically: a reader
// never sees half a report.
func writeReport(path string, rep *client.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
