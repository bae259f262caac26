package install

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func newSlots(t testing.TB, mod func(*SlotsConfig)) (*Slots, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "slots")
	cfg := SlotsConfig{Dir: dir, Model: "thermo", FactoryVersion: "0.9.0"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSlots(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestSlotsInstallAlternatesSlots(t *testing.T) {
	s, dir := newSlots(t, nil)
	pkgDir := t.TempDir()
	if v, _ := s.ActiveVersion(); v != "0.9.0" {
		t.Fatalf("factory version %q", v)
	}
	steps := []struct {
		version, slot string
	}{
		{"1.0.0", "a"}, {"1.1.0", "b"}, {"1.2.0", "a"}, {"1.3.0", "b"},
	}
	prev := "0.9.0"
	for _, st := range steps {
		pkg, tg := goodPkg(t, pkgDir, st.version)
		var calls [][2]int64
		err := s.Install(context.Background(), pkg, tg, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
		if err != nil {
			t.Fatalf("install %s: %v", st.version, err)
		}
		if got := readLink(t, dir); got != st.slot {
			t.Fatalf("after installing %s current → %q, want %q", st.version, got, st.slot)
		}
		// sv changes only on confirmation.
		if got := mustStatus(t, s); got.Active != prev || got.Pending != st.version || got.PendingPhase != string(phaseSwitching) {
			t.Fatalf("status before confirm = %+v", got)
		}
		if len(calls) < 2 || calls[0] != [2]int64{0, tg.Length} || calls[len(calls)-1] != [2]int64{tg.Length, tg.Length} {
			t.Fatalf("progress calls %v, want from 0 to %d", calls, tg.Length)
		}
		if err := s.Confirm(context.Background(), tg); err != nil {
			t.Fatalf("confirm %s: %v", st.version, err)
		}
		if got, _ := s.ActiveVersion(); got != st.version {
			t.Fatalf("active %q after confirming %s", got, st.version)
		}
		cur, err := s.Current()
		if err != nil || cur != filepath.Join(dir, st.slot) {
			t.Fatalf("Current() = %q, %v", cur, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, currentName, "etc", "current-version"))
		if err != nil || string(b) != st.version {
			t.Fatalf("current/etc/current-version = %q, %v", b, err)
		}
		fi, err := os.Stat(filepath.Join(dir, currentName, "lib", "app-hard.so"))
		if err != nil || fi.Size() != 1000 {
			t.Fatalf("hard link: %v %v", fi, err)
		}
		prev = st.version
	}
}

func TestSlotsPlainTarAndModes(t *testing.T) {
	s, dir := newSlots(t, nil)
	// As git archive makes them: a global header first, ./ names.
	entries := []entry{{name: "pax_global_header", typ: tar.TypeXGlobalHeader, body: "0123abcd"}, {name: "./", typ: tar.TypeDir}}
	for _, e := range goodEntries("1.0.0") {
		e.name = "./" + e.name
		entries = append(entries, e)
	}
	entries = append(entries,
		entry{name: "bin/suid", body: "x", mode: 0o4755},
		entry{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		entry{name: "ro/file", body: "y"},
	)
	pkg, tg := writePkg(t, t.TempDir(), "1.0.0", buildTar(t, entries, false))
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "a", "bin", "suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("set-id bit kept: %v", fi.Mode())
	}
	fi, err = os.Stat(filepath.Join(dir, "a", "bin", "app"))
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/app not executable: %v %v", fi, err)
	}
}

// TestSlotsRejectsBadPackages: every malformed or hostile package leaves the
// active slot untouched, writes nothing outside the slot and reports the
// right result.
func TestSlotsRejectsBadPackages(t *testing.T) {
	m := manifestEntry("1.1.0")
	tests := []struct {
		name    string
		entries []entry
		raw     []byte // instead of entries
		mod     func(*SlotsConfig)
		length  int64 // overrides the target length when non-zero
		result  swu.Result
		detail  string
	}{
		{name: "dot dot", entries: []entry{m, {name: "../evil", body: "x"}}, result: 5, detail: "escapes"},
		{name: "nested dot dot", entries: []entry{m, {name: "bin/../../evil", body: "x"}}, result: 5, detail: "escapes"},
		{name: "absolute path", entries: []entry{m, {name: "/tmp/evil-abs", body: "x"}}, result: 5, detail: "escapes"},
		{name: "absolute symlink", entries: []entry{m, {name: "l", typ: tar.TypeSymlink, link: "/etc"}}, result: 5, detail: "absolute"},
		{name: "relative symlink escape", entries: []entry{m, {name: "d/l", typ: tar.TypeSymlink, link: "../../evil"}}, result: 5, detail: "escapes"},
		{name: "write through escaping symlink chain", entries: []entry{m,
			{name: "q", typ: tar.TypeSymlink, link: "."},
			{name: "p", typ: tar.TypeSymlink, link: "q/.."},
			{name: "p/evil", body: "x"}}, result: 5},
		{name: "symlink chain escape at rest", entries: []entry{m,
			{name: "q", typ: tar.TypeSymlink, link: "."},
			{name: "p", typ: tar.TypeSymlink, link: "q/.."}}, result: 5, detail: "does not resolve"},
		{name: "dangling symlink", entries: []entry{m, {name: "l", typ: tar.TypeSymlink, link: "nowhere"}}, result: 5, detail: "does not resolve"},
		{name: "hard link escape", entries: []entry{m, {name: "h", typ: tar.TypeLink, link: "../../../etc/passwd"}}, result: 5, detail: "escapes"},
		{name: "hard link absolute", entries: []entry{m, {name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, result: 5, detail: "absolute"},
		{name: "hard link through symlink", entries: []entry{m,
			{name: "l", typ: tar.TypeSymlink, link: "."},
			{name: "h", typ: tar.TypeLink, link: "l"}}, result: 5, detail: "not a regular file"},
		{name: "hard link to missing", entries: []entry{m, {name: "h", typ: tar.TypeLink, link: "later"}}, result: 5, detail: "not in the package"},
		{name: "char device", entries: []entry{m, {name: "null", typ: tar.TypeChar}}, result: 5, detail: "only files"},
		{name: "block device", entries: []entry{m, {name: "sda", typ: tar.TypeBlock}}, result: 5, detail: "only files"},
		{name: "fifo", entries: []entry{m, {name: "fifo", typ: tar.TypeFifo}}, result: 5, detail: "only files"},
		{name: "huge declared size", entries: []entry{m, {name: "bomb", declared: 8 << 30}}, result: 5, detail: "declares"},
		{name: "total beyond bound", entries: []entry{m, {name: "x", body: strings.Repeat("a", 600)}, {name: "y", body: strings.Repeat("b", 600)}},
			mod: func(c *SlotsConfig) { c.MaxUnpackedBytes = 1000 }, result: 5, detail: "bound"},
		{name: "too many entries", entries: []entry{m, {name: "1"}, {name: "2"}, {name: "3"}},
			mod: func(c *SlotsConfig) { c.MaxEntries = 3 }, result: 5, detail: "entries"},
		{name: "duplicate entry", entries: []entry{m, {name: "x", body: "1"}, {name: "x", body: "2"}}, result: 5},
		{name: "file used as directory", entries: []entry{m, {name: "x", body: "1"}, {name: "x/y", body: "2"}}, result: 5},
		{name: "no manifest", entries: []entry{{name: "x", body: "1"}}, result: 5, detail: "no " + ManifestName},
		{name: "manifest is a symlink", entries: []entry{{name: "m.json", body: `{"version":"1.1.0"}`},
			{name: ManifestName, typ: tar.TypeSymlink, link: "m.json"}}, result: 5, detail: "not a regular file"},
		{name: "manifest wrong version", entries: []entry{manifestEntry("9.9.9")}, result: 5, detail: `"9.9.9"`},
		{name: "manifest wrong model", entries: []entry{{name: ManifestName, body: `{"version":"1.1.0","model":"toaster"}`}}, result: 5, detail: "toaster"},
		{name: "manifest not json", entries: []entry{{name: ManifestName, body: `version=1.1.0`}}, result: 5},
		{name: "manifest trailing data", entries: []entry{{name: ManifestName, body: `{"version":"1.1.0"} {}`}}, result: 5, detail: "trailing"},
		{name: "manifest exec missing", entries: []entry{{name: ManifestName, body: `{"version":"1.1.0","exec":"bin/nope"}`}}, result: 5, detail: "exec"},
		{name: "manifest exec not executable", entries: []entry{{name: "bin/app", body: "x"},
			{name: ManifestName, body: `{"version":"1.1.0","exec":"bin/app"}`}}, result: 5, detail: "not an executable"},
		{name: "manifest exec escapes", entries: []entry{{name: ManifestName, body: `{"version":"1.1.0","exec":"../a/bin/app"}`}}, result: 5, detail: "exec"},
		{name: "not an archive", raw: []byte(strings.Repeat("garbage!", 200)), result: 5},
		{name: "corrupt gzip", raw: append([]byte{0x1f, 0x8b, 8, 0}, strings.Repeat("z", 100)...), result: 5},
		{name: "empty archive", entries: []entry{}, result: 5, detail: "empty"},
		{name: "length differs from signed metadata", entries: goodEntries("1.1.0"), length: 12345, result: 5, detail: "signed metadata says 12345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSlots(t, nil)
			pkgDir := t.TempDir()
			installConfirmed(t, s, pkgDir, "1.0.0")
			if tt.mod != nil {
				tt.mod(&s.cfg)
			}
			before, err := os.ReadFile(filepath.Join(dir, "a", "etc", "version"))
			if err != nil {
				t.Fatal(err)
			}

			b := tt.raw
			if b == nil {
				b = buildTar(t, tt.entries, true)
			}
			pkg, tg := writePkg(t, pkgDir, "1.1.0", b)
			if tt.length != 0 {
				tg.Length = tt.length
			}
			err = s.Install(context.Background(), pkg, tg, nil)
			wantStepError(t, err, tt.result, tt.detail, "still on 1.0.0")
			if tt.result == swu.ResultValidation && !errors.Is(err, ErrBadPackage) {
				t.Errorf("error %v does not wrap ErrBadPackage", err)
			}

			// Nothing changed for the device.
			if got := readLink(t, dir); got != "a" {
				t.Errorf("current → %q, want a", got)
			}
			after, err := os.ReadFile(filepath.Join(dir, "a", "etc", "version"))
			if err != nil || string(after) != string(before) {
				t.Errorf("active slot changed: %q, %v", after, err)
			}
			st := mustStatus(t, s)
			if st.Active != "1.0.0" || st.Pending != "" || st.LastVersion != "1.1.0" || st.LastResult != tt.result {
				t.Errorf("status = %+v", st)
			}
			for _, leftover := range []string{"b.tmp", "evil", "../evil"} {
				if _, err := os.Lstat(filepath.Join(dir, leftover)); err == nil {
					t.Errorf("%s exists", leftover)
				}
			}
			if _, err := os.Lstat("/tmp/evil-abs"); err == nil {
				t.Errorf("/tmp/evil-abs exists")
			}
			// The agent calls Confirm only after a successful Install, but
			// a stray one must not claim success.
			wantStepError(t, s.Confirm(context.Background(), tg), tt.result)
			// And the device can still be updated.
			s.cfg.MaxUnpackedBytes, s.cfg.MaxEntries = DefaultMaxUnpackedBytes, DefaultMaxEntries
			installConfirmed(t, s, pkgDir, "1.2.0")
		})
	}
}

func TestSlotsHealthFailureRollsBack(t *testing.T) {
	tests := []struct {
		name   string
		health HealthCheck
		detail []string
	}{
		{
			name:   "command fails",
			health: HealthCheck{Command: []string{"sh", "-c", "echo checking; echo 'port 5683 not answering' >&2; exit 4"}},
			detail: []string{"health command exited with status 4", "port 5683 not answering"},
		},
		{
			name:   "command times out",
			health: HealthCheck{Command: []string{"sleep", "60"}, Timeout: 200 * time.Millisecond, KillGrace: 100 * time.Millisecond},
			detail: []string{"timed out after 200ms"},
		},
		{
			name:   "command missing",
			health: HealthCheck{Command: []string{"/nonexistent/health"}},
			detail: []string{"health command failed"},
		},
		{
			name:   "probe fails",
			health: HealthCheck{Probe: func(context.Context) error { return errors.New("no answer on /oic/d") }},
			detail: []string{"health probe: no answer on /oic/d"},
		},
		{
			name: "probe times out",
			health: HealthCheck{Timeout: 100 * time.Millisecond, Probe: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			}},
			detail: []string{"health probe timed out after 100ms"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSlots(t, nil)
			pkgDir := t.TempDir()
			installConfirmed(t, s, pkgDir, "1.0.0")
			s.cfg.Health = tt.health
			s.cfg.Health.setDefaults()

			pkg, tg := goodPkg(t, pkgDir, "1.1.0")
			if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
				t.Fatal(err)
			}
			if got := readLink(t, dir); got != "b" {
				t.Fatalf("current → %q after install", got)
			}
			want := append([]string{"health check failed after switching to 1.1.0", "; rolled back to 1.0.0"}, tt.detail...)
			err := s.Confirm(context.Background(), tg)
			wantStepError(t, err, swu.ResultUpdateFailed, want...)
			if got := readLink(t, dir); got != "a" {
				t.Errorf("current → %q after rollback, want a", got)
			}
			if v, _ := s.ActiveVersion(); v != "1.0.0" {
				t.Errorf("active %q", v)
			}
			// Idempotent: the agent may crash before saving the result.
			sameOutcome(t, s.Confirm(context.Background(), tg), err)
		})
	}
}

func TestSlotsRollbackToFactory(t *testing.T) {
	s, dir := newSlots(t, func(c *SlotsConfig) {
		c.Health.Probe = func(context.Context) error { return errors.New("broken") }
	})
	pkg, tg := goodPkg(t, t.TempDir(), "1.0.0")
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	wantStepError(t, s.Confirm(context.Background(), tg), 8, "rolled back to 0.9.0")
	if got := readLink(t, dir); got != "" {
		t.Errorf("current → %q, want no link (factory)", got)
	}
}

func TestSlotsHealthCommandEnvironment(t *testing.T) {
	script := `test "$OCFUPDATE_VERSION" = 1.1.0 && test "$OCFUPDATE_MODEL" = thermo && test -f "$OCFUPDATE_SLOT/` + ManifestName + `"`
	s, _ := newSlots(t, func(c *SlotsConfig) { c.Health.Command = []string{"sh", "-c", script} })
	pkg, tg := goodPkg(t, t.TempDir(), "1.1.0")
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(context.Background(), tg); err != nil {
		t.Fatalf("repeated Confirm: %v", err)
	}
}

func TestSlotsConfirmCancelledDecidesNothing(t *testing.T) {
	healthy := false
	s, dir := newSlots(t, func(c *SlotsConfig) {
		c.Health.MaxAttempts = 2
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.cfg.Health.Probe = func(pctx context.Context) error {
		if healthy {
			return nil
		}
		cancel() // the agent is stopping during the check
		<-pctx.Done()
		return pctx.Err()
	}
	pkg, tg := goodPkg(t, t.TempDir(), "1.1.0")
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	err := s.Confirm(ctx, tg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Confirm = %v, want context.Canceled", err)
	}
	if r, _ := resultOfErr(t, err); r != 0 {
		t.Fatalf("cancellation reported as result %d", r)
	}
	if st := mustStatus(t, s); st.Pending != "1.1.0" || readLink(t, dir) != "a" {
		t.Fatalf("status %+v, current %q", st, readLink(t, dir))
	}
	healthy = true
	if err := s.Confirm(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ActiveVersion(); v != "1.1.0" {
		t.Fatalf("active %q", v)
	}
}

// TestSlotsMaxAttempts: a version whose check never completes (each start
// dies during it) is rolled back unchecked after MaxAttempts starts.
func TestSlotsMaxAttempts(t *testing.T) {
	s, dir := newSlots(t, func(c *SlotsConfig) { c.Health.MaxAttempts = 2 })
	installConfirmed(t, s, t.TempDir(), "1.0.0")
	pkg, tg := goodPkg(t, t.TempDir(), "1.1.0")
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	probes := 0
	s.cfg.Health.Probe = func(ctx context.Context) error { probes++; return nil }
	// Simulate two starts that died during the check.
	r, _ := s.st.load()
	r.Pending.Attempts = 2
	if err := s.st.save(&r); err != nil {
		t.Fatal(err)
	}
	wantStepError(t, s.Confirm(context.Background(), tg), 8, "did not pass its health check in 2 starts", "rolled back to 1.0.0")
	if probes != 0 || readLink(t, dir) != "a" {
		t.Fatalf("probes %d, current %q", probes, readLink(t, dir))
	}
}

func TestSlotsRestartHook(t *testing.T) {
	var got []string
	s, dir := newSlots(t, func(c *SlotsConfig) {
		c.Restart = func(exe string) error {
			got = append(got, exe)
			if len(got) == 2 {
				return errors.New("exec format error")
			}
			return nil
		}
	})
	pkgDir := t.TempDir()
	installConfirmed(t, s, pkgDir, "1.0.0")
	if want := filepath.Join(dir, currentName, "bin", "app"); len(got) != 1 || got[0] != want {
		t.Fatalf("Restart(%q), want %q", got, want)
	}
	pkg, tg := goodPkg(t, pkgDir, "1.1.0")
	err := s.Install(context.Background(), pkg, tg, nil)
	wantStepError(t, err, 8, "restarting into 1.1.0 failed: exec format error", "rolled back to 1.0.0")
	if readLink(t, dir) != "a" {
		t.Fatalf("current → %q", readLink(t, dir))
	}
	// A package without exec restarts with "".
	noExec := []entry{{name: ManifestName, body: `{"version":"1.2.0"}`}}
	pkg, tg = writePkg(t, pkgDir, "1.2.0", buildTar(t, noExec, true))
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	if got[2] != "" {
		t.Fatalf("Restart(%q) for a package without exec", got[2])
	}
}

func TestSlotsInstallWhilePending(t *testing.T) {
	s, dir := newSlots(t, nil)
	pkgDir := t.TempDir()
	installConfirmed(t, s, pkgDir, "1.0.0")
	pkg, tg := goodPkg(t, pkgDir, "1.1.0")
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	pkg2, tg2 := goodPkg(t, pkgDir, "1.2.0")
	err := s.Install(context.Background(), pkg2, tg2, nil)
	wantStepError(t, err, 8, "1.1.0 is installed and awaits confirmation")
	if !errors.Is(err, ErrPending) {
		t.Fatalf("%v is not ErrPending", err)
	}
	// The slot in use (b) was not touched.
	if b, err := os.ReadFile(filepath.Join(dir, "b", "etc", "version")); err != nil || string(b) != "1.1.0" {
		t.Fatalf("slot b: %q %v", b, err)
	}
	// Confirming another version than the pending one rolls back.
	wantStepError(t, s.Confirm(context.Background(), tg2), 8, "installed version 1.1.0 is not the expected 1.2.0", "rolled back to 1.0.0")
}

func TestSlotsRefusesToWipeLinkedSlot(t *testing.T) {
	s, dir := newSlots(t, nil)
	pkgDir := t.TempDir()
	installConfirmed(t, s, pkgDir, "1.0.0")
	installConfirmed(t, s, pkgDir, "1.1.0")
	// Someone points current back at a by hand; a is now the inactive slot.
	if err := s.point("a"); err != nil {
		t.Fatal(err)
	}
	pkg, tg := goodPkg(t, pkgDir, "1.2.0")
	wantStepError(t, s.Install(context.Background(), pkg, tg, nil), 8, "does not point to the active slot")
	if b, err := os.ReadFile(filepath.Join(dir, "a", "etc", "version")); err != nil || string(b) != "1.0.0" {
		t.Fatalf("slot a: %q %v", b, err)
	}
}

func TestSlotsConfirmWithoutInstall(t *testing.T) {
	s, _ := newSlots(t, nil)
	wantStepError(t, s.Confirm(context.Background(), step.Target{Version: "1.1.0"}), 8, "still on 0.9.0")
	// The factory version itself needs no confirmation.
	if err := s.Confirm(context.Background(), step.Target{Version: "0.9.0"}); err != nil {
		t.Fatal(err)
	}
}

func TestSlotsCancelDuringUnpack(t *testing.T) {
	s, dir := newSlots(t, nil)
	pkgDir := t.TempDir()
	installConfirmed(t, s, pkgDir, "1.0.0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.hook = func(point string) {
		if point == "entry" {
			cancel()
		}
	}
	pkg, tg := goodPkg(t, pkgDir, "1.1.0")
	err := s.Install(ctx, pkg, tg, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Install = %v, want context.Canceled", err)
	}
	if r, _ := resultOfErr(t, err); r != 0 {
		t.Fatalf("cancellation reported as result %d", r)
	}
	st := mustStatus(t, s)
	if st.Pending != "" || st.Active != "1.0.0" || st.LastVersion != "1.0.0" || readLink(t, dir) != "a" {
		t.Fatalf("status %+v, current %q", st, readLink(t, dir))
	}
	if _, err := os.Lstat(filepath.Join(dir, "b.tmp")); err == nil {
		t.Fatal("b.tmp left behind")
	}
}

func TestSlotsBusy(t *testing.T) {
	s, dir := newSlots(t, nil)
	other, err := NewSlots(SlotsConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := other.st.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	pkg, tg := goodPkg(t, t.TempDir(), "1.1.0")
	err = s.Install(context.Background(), pkg, tg, nil)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Install = %v, want ErrBusy", err)
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default kind is slots", Config{Slots: SlotsConfig{Dir: dir}}, true},
		{"slots", Config{Kind: KindSlots, Slots: SlotsConfig{Dir: dir}}, true},
		{"slots without dir", Config{Kind: KindSlots}, false},
		{"slots bad factory version", Config{Slots: SlotsConfig{Dir: dir, FactoryVersion: "1 0"}}, false},
		{"exec", Config{Kind: KindExec, Exec: ExecConfig{Dir: dir, Command: []string{"true"}}}, true},
		{"exec without command", Config{Kind: KindExec, Exec: ExecConfig{Dir: dir}}, false},
		{"unknown kind", Config{Kind: "rauc"}, false},
	}
	for _, tt := range tests {
		in, err := New(tt.cfg)
		if (err == nil) != tt.ok || (in != nil) != tt.ok {
			t.Errorf("%s: New = %v, %v", tt.name, in, err)
		}
	}
}

func TestInstallRefusesBadTarget(t *testing.T) {
	s, _ := newSlots(t, nil)
	pkg, _ := goodPkg(t, t.TempDir(), "1.1.0")
	for _, v := range []string{"", "1.1.0\n", strings.Repeat("1", 200)} {
		wantStepError(t, s.Install(context.Background(), pkg, step.Target{Version: v}, nil), 8)
	}
	wantStepError(t, s.Install(context.Background(), filepath.Join(t.TempDir(), "missing"), step.Target{Version: "1.1.0"}, nil),
		8, "no such file", "still on 0.9.0")
}
