package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// DefaultExecTimeout bounds an install command.
const DefaultExecTimeout = 30 * time.Minute

// ExecConfig configures the exec installer, which hands the verified
// package to an external tool (RAUC, SWUpdate, a vendor script).
type ExecConfig struct {
	// Dir holds the installer's state file. Created if missing.
	Dir string
	// Command installs a package. Every "{path}" and "{version}" in its
	// arguments is replaced by the package path and the target version; if
	// no argument contains "{path}", the path is appended. The environment
	// also carries OCFUPDATE_PACKAGE, OCFUPDATE_VERSION, OCFUPDATE_TARGET and
	// OCFUPDATE_MODEL. Exit status 0 is success. The command must return;
	// restarting into the new version is Restart's job.
	// Example: ["rauc", "install", "{path}"].
	Command []string
	// Timeout bounds Command. Default DefaultExecTimeout.
	Timeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL to the command's
	// process group on timeout or cancellation. Default 5s.
	KillGrace time.Duration
	// Model is the device's dmno, passed to the commands.
	Model string
	// FactoryVersion is the version reported before the first install is
	// confirmed.
	FactoryVersion string
	// Health is checked by Confirm.
	Health HealthCheck
	// ConfirmCommand, when set, runs after a successful health check to make
	// the new version permanent (e.g. ["rauc", "status", "mark-good"]); its
	// failure counts as a failed health check.
	ConfirmCommand []string
	// RollbackCommand, when set, runs once when the new version fails its
	// health check (e.g. ["rauc", "status", "mark-bad"] followed by a
	// reboot). Without it the installer can only record the failure.
	RollbackCommand []string
	// Restart is called after Command succeeded (e.g. to reboot into the
	// new version). Same contract as SlotsConfig.Restart; an error makes
	// Install roll back.
	Restart func() error
}

func (c *ExecConfig) validate() error {
	if c.Dir == "" {
		return errors.New("install: exec: Dir is required")
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		return errors.New("install: exec: Command is required")
	}
	if c.FactoryVersion != "" {
		if err := validVersion(c.FactoryVersion); err != nil {
			return fmt.Errorf("install: exec: FactoryVersion: %w", err)
		}
	}
	return nil
}

// Exec installs packages by running an external command.
type Exec struct {
	cfg ExecConfig
	st  stateStore
}

var _ Installer = (*Exec)(nil)

// NewExec returns an exec installer.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Health.setDefaults()
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultExecTimeout
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = defaultGrace
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("install: exec: %w", err)
	}
	return &Exec{cfg: cfg, st: stateStore{dir: cfg.Dir}}, nil
}

// ActiveVersion implements Installer.
func (e *Exec) ActiveVersion() (string, error) {
	st, err := e.Status()
	return st.Active, err
}

// Status implements Installer.
func (e *Exec) Status() (Status, error) {
	r, err := e.st.load()
	if err != nil {
		return Status{}, err
	}
	return r.status(e.cfg.FactoryVersion), nil
}

// Install implements step.Installer: it runs the install command on the
// verified package.
func (e *Exec) Install(ctx context.Context, pkg string, t step.Target, progress step.ProgressFunc) error {
	if err := checkTarget(t); err != nil {
		return err
	}
	unlock, err := e.st.lock()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	defer unlock()
	r, err := e.st.load()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	if p := r.Pending; p != nil && p.Phase != phaseInstalling {
		return failure(swu.ResultUpdateFailed, ErrPending,
			"cannot install %s: %s is installed and awaits confirmation", t.Version, p.Version)
	}
	old := r.activeVersion(e.cfg.FactoryVersion)
	r.Pending = &pending{Version: t.Version, Target: t.Name, Phase: phaseInstalling}
	if err := e.st.save(&r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	f, size, err := openPackage(pkg, t)
	if err != nil {
		return e.st.finish(&r, resultOf(err), err,
			fmt.Sprintf("installing %s failed: %v; still on %s", t.Version, err, old))
	}
	_ = f.Close()
	if progress != nil {
		progress(0, size)
	}
	err = run(ctx, command{
		name:    "install command",
		args:    substitute(e.cfg.Command, pkg, t.Version),
		env:     e.env(t, pkg),
		timeout: e.cfg.Timeout,
		grace:   e.cfg.KillGrace,
	})
	if ctx.Err() != nil {
		r.Pending = nil
		if serr := e.st.save(&r); serr != nil {
			return errors.Join(cancelled(ctx, "install", t.Version), serr)
		}
		return cancelled(ctx, "install", t.Version)
	}
	if err != nil {
		return e.st.finish(&r, swu.ResultUpdateFailed, err,
			fmt.Sprintf("installing %s failed: %s; still on %s", t.Version, summary(err), old))
	}
	if progress != nil {
		progress(size, size)
	}
	r.Pending.Phase = phaseInstalled
	if err := e.st.save(&r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot record %s as installed", t.Version)
	}
	if e.cfg.Restart == nil {
		return nil
	}
	if err := e.cfg.Restart(); err != nil {
		return e.rollBack(ctx, &r, fmt.Sprintf("restarting into %s failed: %v", t.Version, err))
	}
	return nil
}

// Confirm implements step.Installer: health check, then ConfirmCommand; on
// failure RollbackCommand and result 8. Idempotent and crash-safe like the
// slots installer's; the rollback command is never started twice.
func (e *Exec) Confirm(ctx context.Context, t step.Target) error {
	unlock, err := e.st.lock()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", t.Version)
	}
	defer unlock()
	r, err := e.st.load()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", t.Version)
	}
	e.st.removeTemps()
	p := r.Pending
	if p == nil {
		return settled(&r, t, e.cfg.FactoryVersion)
	}
	old := r.activeVersion(e.cfg.FactoryVersion)
	if p.Version != t.Version && p.Phase != phaseRollingBack {
		return e.rollBack(ctx, &r, fmt.Sprintf("the installed version %s is not the expected %s", p.Version, t.Version))
	}
	switch p.Phase {
	case phaseInstalling:
		// Whether the tool got anywhere is unknown; it is atomic by
		// contract (RAUC, SWUpdate), so the old version is still in use.
		return e.st.finish(&r, swu.ResultUpdateFailed, nil,
			fmt.Sprintf("the install command for %s was interrupted; still on %s", p.Version, old))
	case phaseInstalled:
		return e.checkHealth(ctx, &r)
	case phaseRollingBack:
		return e.rollBack(ctx, &r, p.Detail)
	default:
		return e.rollBack(ctx, &r, fmt.Sprintf("the install of %s is in an unknown phase %q", p.Version, p.Phase))
	}
}

func (e *Exec) checkHealth(ctx context.Context, r *record) error {
	p := r.Pending
	if p.Attempts >= e.cfg.Health.MaxAttempts {
		return e.rollBack(ctx, r, fmt.Sprintf("%s did not pass its health check in %d starts", p.Version, p.Attempts))
	}
	p.Attempts++
	if err := e.st.save(r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", p.Version)
	}
	env := []string{"OCFUPDATE_VERSION=" + p.Version, "OCFUPDATE_MODEL=" + e.cfg.Model}
	err := e.cfg.Health.check(ctx, env)
	if err == nil && len(e.cfg.ConfirmCommand) > 0 {
		err = run(ctx, command{name: "confirm command", args: e.cfg.ConfirmCommand, env: env,
			timeout: e.cfg.Health.Timeout, grace: e.cfg.KillGrace})
		if err != nil {
			err = errors.New(summary(err))
		}
	}
	if ctx.Err() != nil {
		return cancelled(ctx, "confirm", p.Version)
	}
	if err == nil {
		if err := e.st.confirm(r); err != nil {
			return failure(swu.ResultUpdateFailed, err, "cannot record %s as confirmed", p.Version)
		}
		return nil
	}
	return e.rollBack(ctx, r, fmt.Sprintf("health check failed after installing %s: %v", p.Version, err))
}

// rollBack runs the rollback command (once) and ends the pending install
// with result 8.
func (e *Exec) rollBack(ctx context.Context, r *record, why string) error {
	p := r.Pending
	if p.Phase != phaseRollingBack {
		p.Phase, p.Detail = phaseRollingBack, why
	}
	old := r.activeVersion(e.cfg.FactoryVersion)
	if len(e.cfg.RollbackCommand) == 0 {
		return e.st.finish(r, swu.ResultUpdateFailed, nil,
			fmt.Sprintf("%s; no rollback command is configured, %s is recorded as the version in use", p.Detail, old))
	}
	if p.RollbackStarted {
		// It may have rebooted the device; running it again could too.
		return e.st.finish(r, swu.ResultUpdateFailed, nil,
			fmt.Sprintf("%s; the rollback command was interrupted, back on %s", p.Detail, old))
	}
	p.RollbackStarted = true
	if err := e.st.save(r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "%s; rolling back failed", p.Detail)
	}
	err := run(ctx, command{name: "rollback command", args: e.cfg.RollbackCommand,
		env:     []string{"OCFUPDATE_VERSION=" + p.Version, "OCFUPDATE_MODEL=" + e.cfg.Model, "OCFUPDATE_ROLLBACK_TO=" + old},
		timeout: e.cfg.Timeout, grace: e.cfg.KillGrace})
	if ctx.Err() != nil {
		// We killed it, so it did not run to its end: run it again next time.
		p.RollbackStarted = false
		if serr := e.st.save(r); serr != nil {
			return errors.Join(cancelled(ctx, "roll back", p.Version), serr)
		}
		return cancelled(ctx, "roll back", p.Version)
	}
	if err != nil {
		return e.st.finish(r, swu.ResultUpdateFailed, err,
			fmt.Sprintf("%s; rolling back to %s failed: %s", p.Detail, old, summary(err)))
	}
	return e.st.finish(r, swu.ResultUpdateFailed, nil, fmt.Sprintf("%s; rolled back to %s", p.Detail, old))
}

func (e *Exec) env(t step.Target, pkg string) []string {
	return []string{
		"OCFUPDATE_PACKAGE=" + pkg,
		"OCFUPDATE_VERSION=" + t.Version,
		"OCFUPDATE_TARGET=" + t.Name,
		"OCFUPDATE_MODEL=" + e.cfg.Model,
	}
}

// substitute fills in {path} and {version}; without a {path} the path is
// appended.
func substitute(args []string, pkg, version string) []string {
	out := make([]string, 0, len(args)+1)
	hasPath := false
	for _, a := range args {
		if strings.Contains(a, "{path}") {
			hasPath = true
		}
		a = strings.ReplaceAll(a, "{path}", pkg)
		out = append(out, strings.ReplaceAll(a, "{version}", version))
	}
	if !hasPath {
		out = append(out, pkg)
	}
	return out
}

// summary is a command error as a human phrase.
func summary(err error) string {
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.Summary()
	}
	return err.Error()
}
