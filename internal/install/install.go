package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Installer kinds, as named in the agent's configuration.
const (
	KindSlots = "slots"
	KindExec  = "exec"
)

// Defaults for health checks.
const (
	DefaultHealthTimeout = 2 * time.Minute
	DefaultMaxAttempts   = 3
)

// Installer is a step.Installer that also knows which version is installed.
type Installer interface {
	step.Installer
	// ActiveVersion is the confirmed version (sv): the factory version until
	// the first install is confirmed. It does not change while a new version
	// awaits confirmation.
	ActiveVersion() (string, error)
	// Status reports the persisted state, for reconciliation at start-up.
	Status() (Status, error)
}

// Config chooses and configures an installer.
type Config struct {
	Kind  string // KindSlots (default when empty) or KindExec
	Slots SlotsConfig
	Exec  ExecConfig
}

// New builds the installer cfg.Kind names.
func New(cfg Config) (Installer, error) {
	// Return a nil interface, not a nil *Slots in one, on error.
	switch cfg.Kind {
	case "", KindSlots:
		s, err := NewSlots(cfg.Slots)
		if err != nil {
			return nil, err
		}
		return s, nil
	case KindExec:
		e, err := NewExec(cfg.Exec)
		if err != nil {
			return nil, err
		}
		return e, nil
	default:
		return nil, fmt.Errorf("install: unknown installer kind %q (want %q or %q)", cfg.Kind, KindSlots, KindExec)
	}
}

// HealthCheck is how a newly installed version proves it works before it is
// confirmed. Reaching Confirm at all means the agent came up; Command and
// Probe, when set, must also succeed, together within Timeout.
type HealthCheck struct {
	// Command is run with OCFUPDATE_VERSION, OCFUPDATE_MODEL (and for slots
	// OCFUPDATE_SLOT, the new slot's directory) in its environment; exit
	// status 0 is healthy. Empty: no command.
	Command []string
	// Probe is an in-process check, e.g. the agent answering a request on
	// its own endpoint. Nil: none.
	Probe func(ctx context.Context) error
	// Timeout bounds Command and Probe together. Default DefaultHealthTimeout.
	Timeout time.Duration
	// MaxAttempts is how many starts of the new version may try the check
	// before it is rolled back unchecked: a check that crashes or hangs the
	// agent must not keep the device on a broken version. Default
	// DefaultMaxAttempts.
	MaxAttempts int
	// KillGrace is the time between SIGTERM and SIGKILL for Command.
	// Default 5s.
	KillGrace time.Duration
}

func (h *HealthCheck) setDefaults() {
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.MaxAttempts <= 0 {
		h.MaxAttempts = DefaultMaxAttempts
	}
	if h.KillGrace <= 0 {
		h.KillGrace = defaultGrace
	}
}

// check runs the health check; a nil error is healthy.
func (h *HealthCheck) check(ctx context.Context, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	if len(h.Command) > 0 {
		err := run(ctx, command{name: "health command", args: h.Command, env: env, grace: h.KillGrace})
		var ce *CommandError
		if errors.As(err, &ce) {
			if errors.Is(err, context.DeadlineExceeded) {
				ce.TimedOut, ce.Timeout = true, h.Timeout
			}
			return errors.New(ce.Summary())
		}
		if err != nil {
			return err
		}
	}
	if h.Probe != nil {
		if err := h.Probe(ctx); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("health probe timed out after %s: %w", h.Timeout, err)
			}
			return fmt.Errorf("health probe: %w", err)
		}
	}
	return nil
}

// checkTarget refuses a target the installer cannot name safely.
func checkTarget(t step.Target) error {
	if err := validVersion(t.Version); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install target %q", t.Name)
	}
	return nil
}

// openPackage opens the verified package and checks it is the length the
// signed metadata promised: defence in depth against being handed the wrong
// or a partial file.
func openPackage(pkg string, t step.Target) (*os.File, int64, error) {
	f, err := os.Open(pkg)
	if err != nil {
		return nil, 0, fmt.Errorf("open package: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("stat package: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, fmt.Errorf("package %s is not a regular file", pkg)
	}
	if t.Length > 0 && fi.Size() != t.Length {
		_ = f.Close()
		return nil, 0, fmt.Errorf("%w: the package is %d bytes, the signed metadata says %d",
			ErrBadPackage, fi.Size(), t.Length)
	}
	return f, fi.Size(), nil
}

// cancelled is returned when ctx ended an operation: not a failure of the
// update, and nothing recorded as its outcome.
func cancelled(ctx context.Context, what, version string) error {
	return fmt.Errorf("%s %s: %w", what, version, context.Cause(ctx))
}
