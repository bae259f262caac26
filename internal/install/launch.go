package install

import (
	"fmt"
	"os"
	"path/filepath"
)

// Launch decides which program runs the agent, for the launcher at the
// start of every process (see "Launching" in the package documentation).
// It returns the absolute path of the exec of the slot current points to,
// or "" when the running program is to stay: no slot (the factory
// software), or a slot whose package names no exec.
//
// A version that awaits confirmation is on trial: each call counts one
// start of it, persisted before Launch returns, and once
// HealthCheck.MaxAttempts starts have not led to a confirmation, or when
// its exec is missing or not executable, Launch rolls it back (result 8,
// reported by the next Confirm) and returns the exec of the slot it went
// back to. So the caller must call Launch once per start of the agent: a
// program started with the returned path, or by Restart, must not call
// it again for the same start. Interrupted installs and rollbacks are
// finished as Confirm finishes them.
//
// An error means that Launch could not tell which program should run, or
// that the confirmed slot's exec is unusable: the caller should stay on
// the running program rather than leave the device without an agent.
func (s *Slots) Launch() (exe string, err error) {
	unlock, err := s.st.lock()
	if err != nil {
		return "", fmt.Errorf("install: launch: %w", err)
	}
	defer unlock()
	r, err := s.st.load()
	if err != nil {
		return "", fmt.Errorf("install: launch: %w", err)
	}
	s.removeLeftovers()
	if r.Pending != nil {
		switched, outcome := s.recoverPending(&r)
		if switched {
			outcome = s.countStart(&r)
		}
		// A finished install's outcome is for Confirm to report; only one
		// still pending here could not be put right.
		if r.Pending != nil && (!switched || outcome != nil) {
			return "", fmt.Errorf("install: launch: %w", outcome)
		}
	}
	cur, err := s.linked()
	if err != nil {
		return "", fmt.Errorf("install: launch: %w", err)
	}
	if cur == "" {
		return "", nil
	}
	exe, err = s.slotExec(cur)
	if err != nil {
		return "", fmt.Errorf("install: launch: %w", err)
	}
	return exe, nil
}

// countStart counts a start of the switched-to pending version, or rolls it
// back when it has had its starts or cannot be started at all. It returns
// nil when the start is counted, or the outcome of the rollback.
func (s *Slots) countStart(r *record) error {
	p := r.Pending
	var why string
	if _, err := s.slotExec(p.Slot); err != nil {
		why = fmt.Sprintf("%s cannot be started: %v", p.Version, err)
	} else if p.Starts >= s.cfg.Health.MaxAttempts {
		why = fmt.Sprintf("%s did not come up in %d starts", p.Version, p.Starts)
	} else {
		p.Starts++
		if err := s.st.save(r); err != nil {
			// Uncounted, a start could crash for ever: do not make it.
			return fmt.Errorf("count a start of %s: %w", p.Version, err)
		}
		return nil
	}
	return s.rollBack(r, why)
}

// slotExec returns the absolute path of the exec the manifest in slot
// names, after checking that it is an executable file inside the slot, or
// "" when the manifest names none.
func (s *Slots) slotExec(slot string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(s.cfg.Dir, slot))
	if err != nil {
		return "", fmt.Errorf("slot %s: %w", slot, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("open slot %s: %w", slot, err)
	}
	defer root.Close()
	m, err := loadManifest(root)
	if err != nil {
		return "", fmt.Errorf("slot %s: %w", slot, err)
	}
	if m.Exec == "" {
		return "", nil
	}
	if err := checkExec(root, m.Exec); err != nil {
		return "", fmt.Errorf("slot %s: %w", slot, err)
	}
	return filepath.Join(dir, filepath.FromSlash(m.Exec)), nil
}
