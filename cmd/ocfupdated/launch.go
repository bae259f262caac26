package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ocfupdate/ocfupdate/internal/install"
)

// launchedEnv marks a process started by the launcher or by the restart
// after an install. That start has been counted already (install.Slots
// Launch, SlotsConfig.Restart), so the process does not launch again: each
// start is counted once, and no chain of programs can exec each other in
// a loop, not even when the slot's program is a wrapper script. Its value
// is the program that was started, for the log. The process removes it
// from its environment at once, so that what it starts later (the restart
// into the next version, health commands) does not inherit it.
const launchedEnv = "OCFUPDATE_LAUNCHED"

// launchPlan is what the launcher decided.
type launchPlan struct {
	exe   string // program to execute; "" = go on in this process
	trial bool   // exe is a version that awaits confirmation
}

// launch runs the slots launcher at start-up (docs/packages.md): a service
// manager always starts the same (factory) program, and this replaces it
// with the program of the slot in use, counting starts of a version that
// awaits confirmation so that one that crashes before its health check is
// rolled back. It returns nil to go on in this process; a successful exec
// does not return. If starting a version on trial fails, it returns an
// error: the process exits, the service manager starts it again, and that
// counts as the next failed start.
func launch(o options, args []string, log *slog.Logger) error {
	self, err := os.Executable()
	if err != nil {
		self = "" // no comparison possible; launchedEnv still prevents loops
	}
	p := planLaunch(o, self, log)
	if p.exe == "" {
		return nil
	}
	log.Info("launching the installed version", "exec", p.exe, "unconfirmed", p.trial)
	err = execAgent(append([]string{p.exe}, args...))
	if !p.trial {
		// Never leave the device without an agent for a confirmed version.
		log.Error("launcher: cannot start the installed version; staying on this program", "exec", p.exe, "err", err)
		return nil
	}
	return fmt.Errorf("launch unconfirmed version %s: %w (exiting; this start counts as failed)", p.exe, err)
}

// planLaunch decides, without executing anything, which program should
// run; self is this program ("" when unknown).
func planLaunch(o options, self string, log *slog.Logger) launchPlan {
	if v, ok := os.LookupEnv(launchedEnv); ok {
		_ = os.Unsetenv(launchedEnv)
		log.Debug("started by the launcher", "exec", v)
		return launchPlan{}
	}
	if !o.Launch || o.Installer != install.KindSlots {
		return launchPlan{}
	}
	cfg := slotsConfig(o, install.HealthCheck{})
	if _, err := os.Stat(cfg.Dir); errors.Is(err, fs.ErrNotExist) {
		return launchPlan{} // nothing ever installed
	}
	slots, err := install.NewSlots(cfg)
	if err != nil {
		log.Error("launcher: staying on this program", "err", err)
		return launchPlan{}
	}
	exe, err := slots.Launch()
	if err != nil {
		log.Error("launcher: staying on this program", "err", err)
		return launchPlan{}
	}
	if exe == "" || sameFile(exe, self) {
		return launchPlan{}
	}
	st, err := slots.Status()
	// Launch leaves an install pending only when it counted this start of
	// it: exe is then that version's program.
	return launchPlan{exe: exe, trial: err != nil || st.Pending != ""}
}

// slotsConfig is the slots installer's configuration, shared by the
// launcher and the installer so that both see the same directory and
// limits.
func slotsConfig(o options, health install.HealthCheck) install.SlotsConfig {
	return install.SlotsConfig{
		Dir: filepath.Join(o.DataDir, "slots"), Model: o.Model, FactoryVersion: o.Version, Health: health,
	}
}

func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// execAgent replaces this process with argv[0], with argv as its
// arguments and this process's environment marked with launchedEnv. It
// returns only on failure. The launcher and the restart after an install
// (steps.reexec) both start the next program through it.
func execAgent(argv []string) error {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, launchedEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, launchedEnv+"="+argv[0])
	if err := syscall.Exec(argv[0], argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return nil
}
