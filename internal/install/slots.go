package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ocfupdate/ocfupdate/internal/fsync"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Names inside SlotsConfig.Dir.
const (
	slotA       = "a"
	slotB       = "b"
	currentName = "current"
	tmpSuffix   = ".tmp"
)

// SlotsConfig configures the slots installer.
type SlotsConfig struct {
	// Dir holds the slots, the current link and the state file, e.g.
	// DATA/slots. Created if missing.
	Dir string
	// Model is the device's dmno; a package whose manifest names another
	// model is refused (result 5).
	Model string
	// FactoryVersion is the version reported before the first install is
	// confirmed, when the running software is not in a slot.
	FactoryVersion string
	// Health is checked by Confirm.
	Health HealthCheck
	// Restart is called by Install once the switch is durable, with the
	// path (through the current link) of the manifest's exec, or "" when it
	// names none. It is meant to replace the process (syscall.Exec) and not
	// return; Confirm then runs in the new version. If it returns nil,
	// Install returns nil and the caller is expected to call Confirm itself;
	// if it returns an error, Install rolls back (result 8). Nil: Install
	// returns after the switch and the caller calls Confirm. Calling it
	// counts as the new version's first start (see Launch): the program it
	// starts must not call Launch for that start again.
	Restart func(exe string) error
	// Bounds on a package's unpacked contents. Defaults
	// DefaultMaxUnpackedBytes and DefaultMaxEntries.
	MaxUnpackedBytes int64
	MaxEntries       int
}

func (c *SlotsConfig) validate() error {
	if c.Dir == "" {
		return errors.New("install: slots: Dir is required")
	}
	if c.FactoryVersion != "" {
		if err := validVersion(c.FactoryVersion); err != nil {
			return fmt.Errorf("install: slots: FactoryVersion: %w", err)
		}
	}
	if c.MaxUnpackedBytes < 0 || c.MaxEntries < 0 {
		return errors.New("install: slots: negative bounds")
	}
	return nil
}

// Slots installs packages into two slot directories, a and b, and points the
// symlink current at the one in use. See the package documentation.
type Slots struct {
	cfg SlotsConfig
	st  stateStore
	// hook, when set by tests, is called at named points of an install so
	// that a test can kill the process there.
	hook func(point string)
}

var _ Installer = (*Slots)(nil)

// NewSlots returns a slots installer over cfg.Dir. It changes nothing on
// disk but creating the directory; leftovers of an interrupted install are
// dealt with by the next Confirm or Install.
func NewSlots(cfg SlotsConfig) (*Slots, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Health.setDefaults()
	if cfg.MaxUnpackedBytes == 0 {
		cfg.MaxUnpackedBytes = DefaultMaxUnpackedBytes
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("install: slots: %w", err)
	}
	return &Slots{cfg: cfg, st: stateStore{dir: cfg.Dir}}, nil
}

// ActiveVersion implements Installer.
func (s *Slots) ActiveVersion() (string, error) {
	st, err := s.Status()
	return st.Active, err
}

// Status implements Installer.
func (s *Slots) Status() (Status, error) {
	r, err := s.st.load()
	if err != nil {
		return Status{}, err
	}
	return r.status(s.cfg.FactoryVersion), nil
}

// Current returns the directory of the slot the current link points to (the
// new one while it awaits confirmation), or "" while the factory software
// runs.
func (s *Slots) Current() (string, error) {
	slot, err := s.linked()
	if err != nil || slot == "" {
		return "", err
	}
	return filepath.Join(s.cfg.Dir, slot), nil
}

// Install implements step.Installer: it unpacks the verified package into
// the inactive slot, switches current to it and restarts (see
// SlotsConfig.Restart). The version stays unconfirmed until Confirm.
func (s *Slots) Install(ctx context.Context, pkg string, t step.Target, progress step.ProgressFunc) error {
	if err := checkTarget(t); err != nil {
		return err
	}
	unlock, err := s.st.lock()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	defer unlock()
	r, err := s.st.load()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	if p := r.Pending; p != nil && p.Phase != phaseUnpacking {
		// The slot that looks inactive may be the one in use: refuse rather
		// than overwrite it. An interrupted unpack is simply redone.
		return failure(swu.ResultUpdateFailed, ErrPending,
			"cannot install %s: %s is installed and awaits confirmation", t.Version, p.Version)
	}
	s.removeLeftovers()

	old := r.activeVersion(s.cfg.FactoryVersion)
	slot := otherSlot(r.activeSlot())
	if cur, err := s.linked(); err != nil || cur == slot {
		// State and link disagree (tampering, or a bug): the slot about to
		// be wiped might be the one in use.
		return failure(swu.ResultUpdateFailed, err,
			"cannot install %s: %s does not point to the active slot of %s", t.Version, currentName, old)
	}
	r.Pending = &pending{Slot: slot, Version: t.Version, Target: t.Name, Phase: phaseUnpacking}
	if err := s.st.save(&r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot install %s", t.Version)
	}
	m, err := s.stage(ctx, pkg, slot, t, progress)
	if err != nil {
		_ = os.RemoveAll(filepath.Join(s.cfg.Dir, slot+tmpSuffix))
		if ctx.Err() != nil {
			// Not an outcome: the agent stops or cancels; nothing changed.
			r.Pending = nil
			if serr := s.st.save(&r); serr != nil {
				return errors.Join(cancelled(ctx, "install", t.Version), serr)
			}
			return cancelled(ctx, "install", t.Version)
		}
		return s.st.finish(&r, resultOf(err), err,
			fmt.Sprintf("installing %s failed: %v; still on %s", t.Version, err, old))
	}

	// The slot is complete and durable. Record that before the switch, so
	// that a crash on either side of it is recognised by Confirm.
	r.Pending.Phase, r.Pending.Exec = phaseSwitching, m.Exec
	if err := s.st.save(&r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "installing %s failed; still on %s", t.Version, old)
	}
	s.at("staged")
	if err := s.point(slot); err != nil {
		return s.rollBack(&r, fmt.Sprintf("switching to %s failed: %v", t.Version, err))
	}
	s.at("switched")
	if s.cfg.Restart == nil {
		return nil
	}
	exe := ""
	if m.Exec != "" {
		exe = filepath.Join(s.cfg.Dir, currentName, m.Exec)
	}
	// The restart is the new version's first start: count it here, as
	// Launch counts the others (the restarted program must not call Launch
	// for it again), so that a program that dies at once is rolled back.
	r.Pending.Starts++
	if err := s.st.save(&r); err != nil {
		return s.rollBack(&r, fmt.Sprintf("restarting into %s failed: %v", t.Version, err))
	}
	if err := s.cfg.Restart(exe); err != nil {
		return s.rollBack(&r, fmt.Sprintf("restarting into %s failed: %v", t.Version, err))
	}
	return nil
}

// stage unpacks the package into slot.tmp, checks its manifest, makes it
// durable and renames it to slot. The inactive slot's old content is
// removed first: it is no one's fallback, and this halves the space needed.
func (s *Slots) stage(ctx context.Context, pkg, slot string, t step.Target, progress step.ProgressFunc) (Manifest, error) {
	f, size, err := openPackage(pkg, t)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	final := filepath.Join(s.cfg.Dir, slot)
	tmp := final + tmpSuffix
	if err := os.RemoveAll(final); err != nil {
		return Manifest{}, fmt.Errorf("clear slot %s: %w", slot, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return Manifest{}, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("create %s: %w", tmp, err)
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return Manifest{}, fmt.Errorf("open %s: %w", tmp, err)
	}
	defer root.Close()

	src := &progressReader{r: f, total: size, fn: progress}
	src.report()
	lim := limits{maxBytes: s.cfg.MaxUnpackedBytes, maxEntries: s.cfg.MaxEntries}
	if err := unpack(ctx, src, root, lim, func(string) { s.at("entry") }); err != nil {
		return Manifest{}, err
	}
	m, err := readManifest(root, t, s.cfg.Model)
	if err != nil {
		return Manifest{}, err
	}
	if err := syncTree(root); err != nil {
		return Manifest{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return Manifest{}, fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := fsync.Dir(s.cfg.Dir); err != nil {
		return Manifest{}, err
	}
	src.done = size
	src.report()
	return m, nil
}

// Confirm implements step.Installer. With t's version switched to, it runs
// the health check and confirms the slot, or rolls back to the previous one
// and returns result 8. It finishes whatever a crash interrupted, and
// answers the same way when called again. If ctx ends during the check,
// nothing is decided and the next Confirm checks again.
func (s *Slots) Confirm(ctx context.Context, t step.Target) error {
	unlock, err := s.st.lock()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", t.Version)
	}
	defer unlock()
	r, err := s.st.load()
	if err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", t.Version)
	}
	s.removeLeftovers()
	p := r.Pending
	if p == nil {
		return settled(&r, t, s.cfg.FactoryVersion)
	}
	if p.Version != t.Version && p.Phase != phaseRollingBack {
		return s.rollBack(&r, fmt.Sprintf("the installed version %s is not the expected %s", p.Version, t.Version))
	}
	if switched, err := s.recoverPending(&r); !switched {
		return err
	}
	return s.checkHealth(ctx, &r)
}

// recoverPending finishes whatever a crash left of the pending install,
// except for the one case that is not a crash's leftover: the install is
// switched to (current points to its slot) and awaits its health check or
// its next start. Then it returns switched and changes nothing. Otherwise
// it returns the install's outcome, as Confirm reports it; r.Pending is nil
// afterwards unless putting the device back on the active slot failed.
func (s *Slots) recoverPending(r *record) (switched bool, err error) {
	p := r.Pending
	old := r.activeVersion(s.cfg.FactoryVersion)
	switch p.Phase {
	case phaseUnpacking:
		return false, s.st.finish(r, swu.ResultUpdateFailed, nil,
			fmt.Sprintf("installing %s was interrupted while unpacking; still on %s", p.Version, old))
	case phaseSwitching:
		cur, err := s.linked()
		if err != nil {
			return false, s.rollBack(r, fmt.Sprintf("cannot tell which slot is current: %v", err))
		}
		if cur == p.Slot {
			return true, nil
		}
		// Crashed before the switch: the old version never stopped being
		// the one in use.
		if err := s.point(r.activeSlot()); err != nil {
			return false, failure(swu.ResultUpdateFailed, err, "cannot confirm %s", p.Version)
		}
		return false, s.st.finish(r, swu.ResultUpdateFailed, nil,
			fmt.Sprintf("installing %s was interrupted before the switch; still on %s", p.Version, old))
	case phaseRollingBack:
		return false, s.rollBack(r, p.Detail)
	default:
		return false, s.rollBack(r, fmt.Sprintf("the install of %s is in an unknown phase %q", p.Version, p.Phase))
	}
}

// checkHealth runs the health check of the switched-to pending slot.
func (s *Slots) checkHealth(ctx context.Context, r *record) error {
	p := r.Pending
	if p.Attempts >= s.cfg.Health.MaxAttempts {
		return s.rollBack(r, fmt.Sprintf("%s did not pass its health check in %d starts", p.Version, p.Attempts))
	}
	p.Attempts++
	if err := s.st.save(r); err != nil {
		return failure(swu.ResultUpdateFailed, err, "cannot confirm %s", p.Version)
	}
	env := []string{
		"OCFUPDATE_VERSION=" + p.Version,
		"OCFUPDATE_MODEL=" + s.cfg.Model,
		"OCFUPDATE_SLOT=" + filepath.Join(s.cfg.Dir, p.Slot),
	}
	err := s.cfg.Health.check(ctx, env)
	if ctx.Err() != nil {
		return cancelled(ctx, "confirm", p.Version)
	}
	if err == nil {
		if err := s.st.confirm(r); err != nil {
			return failure(swu.ResultUpdateFailed, err, "cannot record %s as confirmed", p.Version)
		}
		return nil
	}
	return s.rollBack(r, fmt.Sprintf("health check failed after switching to %s: %v", p.Version, err))
}

// rollBack points current back at the active slot and ends the pending
// install with result 8. The reason is persisted first, so that a crash in
// the middle is finished by the next Confirm with the same detail.
func (s *Slots) rollBack(r *record, why string) error {
	p := r.Pending
	if p.Phase != phaseRollingBack {
		p.Phase, p.Detail = phaseRollingBack, why
		if err := s.st.save(r); err != nil {
			return failure(swu.ResultUpdateFailed, err, "%s; rolling back failed", why)
		}
	}
	s.at("rolling-back")
	old := r.activeVersion(s.cfg.FactoryVersion)
	if err := s.point(r.activeSlot()); err != nil {
		return failure(swu.ResultUpdateFailed, err, "%s; rolling back to %s failed", p.Detail, old)
	}
	return s.st.finish(r, swu.ResultUpdateFailed, nil, fmt.Sprintf("%s; rolled back to %s", p.Detail, old))
}

// point switches current to slot atomically: a new symlink renamed over
// the old one. slot "" removes current (back to the factory software).
func (s *Slots) point(slot string) error {
	cur := filepath.Join(s.cfg.Dir, currentName)
	if slot == "" {
		if err := os.Remove(cur); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", cur, err)
		}
		return fsync.Dir(s.cfg.Dir)
	}
	tmp := cur + tmpSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", tmp, err)
	}
	// Relative, so that the data directory can move.
	if err := os.Symlink(slot, tmp); err != nil {
		return fmt.Errorf("link %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, cur); err != nil {
		return fmt.Errorf("switch %s: %w", cur, err)
	}
	return fsync.Dir(s.cfg.Dir)
}

// linked returns the slot current points to; "" when there is no link.
func (s *Slots) linked() (string, error) {
	target, err := os.Readlink(filepath.Join(s.cfg.Dir, currentName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s link: %w", currentName, err)
	}
	if target != slotA && target != slotB {
		return "", fmt.Errorf("%s points to %q, not a slot", currentName, target)
	}
	return target, nil
}

// removeLeftovers deletes temporaries of an interrupted run. Called with
// the lock held, so none of them belongs to a running install.
func (s *Slots) removeLeftovers() {
	for _, n := range []string{slotA + tmpSuffix, slotB + tmpSuffix, currentName + tmpSuffix} {
		_ = os.RemoveAll(filepath.Join(s.cfg.Dir, n))
	}
	s.st.removeTemps()
}

func (s *Slots) at(point string) {
	if s.hook != nil {
		s.hook(point)
	}
}

func otherSlot(slot string) string {
	if slot == slotA {
		return slotB
	}
	return slotA
}

// syncTree fsyncs every directory of the unpacked tree (files were synced
// as they were written), so that the rename to the slot name publishes a
// complete tree even after a power loss.
func syncTree(root *os.Root) error {
	return fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", name, err)
		}
		if !d.IsDir() {
			return nil
		}
		f, err := root.Open(name)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
		return nil
	})
}

// progressReader reports bytes of the archive read, at most every
// progressStep bytes and at the end.
type progressReader struct {
	r        io.Reader
	total    int64
	done     int64
	reported int64
	fn       step.ProgressFunc
}

const progressStep = 256 << 10

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.done-p.reported >= progressStep {
		p.report()
	}
	return n, err
}

func (p *progressReader) report() {
	p.reported = p.done
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}
