package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// launchFixture is a slots directory prepared for a Launch test.
type launchFixture struct {
	s      *Slots
	dir    string
	pkgDir string
}

func (f launchFixture) confirmed(t *testing.T, version string) {
	t.Helper()
	installConfirmed(t, f.s, f.pkgDir, version)
}

// pending installs version without confirming it (current → its slot).
func (f launchFixture) pending(t *testing.T, version string, entries []entry) {
	t.Helper()
	if entries == nil {
		entries = goodEntries(version)
	}
	pkg, tg := writePkg(t, f.pkgDir, version, buildTar(t, entries, true))
	if err := f.s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatalf("install %s: %v", version, err)
	}
}

// edit changes the persisted record as a crash or earlier starts left it.
func (f launchFixture) edit(t *testing.T, fn func(*record)) {
	t.Helper()
	r, err := f.s.st.load()
	if err != nil {
		t.Fatal(err)
	}
	fn(&r)
	if err := f.s.st.save(&r); err != nil {
		t.Fatal(err)
	}
}

func (f launchFixture) record(t *testing.T) record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, stateName))
	if errors.Is(err, os.ErrNotExist) {
		return record{}
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("state.json: %v\n%s", err, b)
	}
	return r
}

func noExecEntries(version string) []entry {
	return []entry{{name: ManifestName, body: `{"version":"` + version + `","model":"thermo"}`}}
}

// TestSlotsLaunch: which program Launch returns and what it leaves in
// state.json, from every state a start can find.
func TestSlotsLaunch(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f launchFixture)
		// want: the slot whose bin/app is returned; "" for no program.
		wantSlot    string
		wantErr     string
		wantLink    string
		wantActive  string // "" = factory
		wantPending string // pending version afterwards
		wantStarts  int
		// last outcome afterwards
		wantResult swu.Result
		wantDetail []string
	}{
		{
			name:  "no link: factory software",
			setup: func(t *testing.T, f launchFixture) {},
		},
		{
			name:       "confirmed slot with exec",
			setup:      func(t *testing.T, f launchFixture) { f.confirmed(t, "1.0.0") },
			wantSlot:   "a",
			wantLink:   "a",
			wantActive: "1.0.0", wantResult: swu.ResultSuccess,
		},
		{
			name: "confirmed slot without exec",
			setup: func(t *testing.T, f launchFixture) {
				f.pending(t, "1.0.0", noExecEntries("1.0.0"))
				if err := f.s.Confirm(context.Background(), step0("1.0.0")); err != nil {
					t.Fatal(err)
				}
			},
			wantLink:   "a",
			wantActive: "1.0.0", wantResult: swu.ResultSuccess,
		},
		{
			name: "confirmed slot, exec missing",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				if err := os.Remove(filepath.Join(f.dir, "a", "bin", "app")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr:    "bin/app",
			wantLink:   "a",
			wantActive: "1.0.0", wantResult: swu.ResultSuccess,
		},
		{
			name: "confirmed slot, exec not executable",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				if err := os.Chmod(filepath.Join(f.dir, "a", "bin", "app"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr:    "not an executable file",
			wantLink:   "a",
			wantActive: "1.0.0", wantResult: swu.ResultSuccess,
		},
		{
			name: "current points outside the slots",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				cur := filepath.Join(f.dir, currentName)
				if err := os.Remove(cur); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("/usr", cur); err != nil {
					t.Fatal(err)
				}
			},
			wantErr:    "not a slot",
			wantActive: "1.0.0", wantResult: swu.ResultSuccess,
		},
		{
			name: "pending, first start",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
			},
			wantSlot: "b", wantLink: "b",
			wantActive: "1.0.0", wantPending: "1.1.0", wantStarts: 1,
			wantResult: swu.ResultSuccess,
		},
		{
			name: "pending, last start allowed",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				f.edit(t, func(r *record) { r.Pending.Starts = DefaultMaxAttempts - 1 })
			},
			wantSlot: "b", wantLink: "b",
			wantActive: "1.0.0", wantPending: "1.1.0", wantStarts: DefaultMaxAttempts,
			wantResult: swu.ResultSuccess,
		},
		{
			name: "pending, over the limit: back to the previous slot",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				f.edit(t, func(r *record) { r.Pending.Starts = DefaultMaxAttempts })
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"1.1.0 did not come up in 3 starts; rolled back to 1.0.0"},
		},
		{
			name: "pending, over the limit: back to the factory software",
			setup: func(t *testing.T, f launchFixture) {
				f.pending(t, "1.1.0", nil)
				f.edit(t, func(r *record) { r.Pending.Starts = DefaultMaxAttempts })
			},
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"1.1.0 did not come up in 3 starts; rolled back to 0.9.0"},
		},
		{
			name: "pending without exec counts its starts too",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", noExecEntries("1.1.0"))
			},
			wantLink: "b", wantActive: "1.0.0", wantPending: "1.1.0", wantStarts: 1,
			wantResult: swu.ResultSuccess,
		},
		{
			name: "pending, exec missing",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				if err := os.Remove(filepath.Join(f.dir, "b", "bin", "app")); err != nil {
					t.Fatal(err)
				}
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"1.1.0 cannot be started", "bin/app", "rolled back to 1.0.0"},
		},
		{
			name: "pending, slot gone",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				if err := os.RemoveAll(filepath.Join(f.dir, "b")); err != nil {
					t.Fatal(err)
				}
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"1.1.0 cannot be started", "rolled back to 1.0.0"},
		},
		{
			name: "interrupted rollback is finished",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				f.edit(t, func(r *record) {
					r.Pending.Phase, r.Pending.Detail = phaseRollingBack, "health check failed after switching to 1.1.0: boom"
				})
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"health check failed after switching to 1.1.0: boom; rolled back to 1.0.0"},
		},
		{
			name: "interrupted unpack is finished",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.edit(t, func(r *record) {
					r.Pending = &pending{Slot: "b", Version: "1.1.0", Phase: phaseUnpacking}
				})
				if err := os.MkdirAll(filepath.Join(f.dir, "b.tmp", "bin"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"interrupted while unpacking", "still on 1.0.0"},
		},
		{
			name: "crash before the switch is finished",
			setup: func(t *testing.T, f launchFixture) {
				f.confirmed(t, "1.0.0")
				f.pending(t, "1.1.0", nil)
				if err := f.s.point("a"); err != nil {
					t.Fatal(err)
				}
			},
			wantSlot: "a", wantLink: "a", wantActive: "1.0.0",
			wantResult: swu.ResultUpdateFailed,
			wantDetail: []string{"interrupted before the switch", "still on 1.0.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSlots(t, nil)
			f := launchFixture{s: s, dir: dir, pkgDir: t.TempDir()}
			tt.setup(t, f)

			// A fresh installer, as at boot.
			fresh, err := NewSlots(s.cfg)
			if err != nil {
				t.Fatal(err)
			}
			f.s = fresh
			exe, err := fresh.Launch()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Launch() = %q, %v; want an error with %q", exe, err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Launch: %v", err)
			}
			want := ""
			if tt.wantSlot != "" {
				want = filepath.Join(dir, tt.wantSlot, "bin", "app")
			}
			if exe != want {
				t.Fatalf("Launch() = %q, want %q", exe, want)
			}
			if exe != "" && !filepath.IsAbs(exe) {
				t.Errorf("Launch() = %q, not absolute", exe)
			}
			if tt.wantErr != "not a slot" {
				if got := readLink(t, dir); got != tt.wantLink {
					t.Errorf("current → %q, want %q", got, tt.wantLink)
				}
			}

			r := f.record(t)
			active := ""
			if r.Active != nil {
				active = r.Active.Version
			}
			if active != tt.wantActive {
				t.Errorf("state.json active %q, want %q", active, tt.wantActive)
			}
			if p := r.Pending; tt.wantPending == "" && p != nil ||
				tt.wantPending != "" && (p == nil || p.Version != tt.wantPending || p.Starts != tt.wantStarts || p.Phase != phaseSwitching) {
				t.Errorf("state.json pending %+v, want %s with %d starts", p, tt.wantPending, tt.wantStarts)
			}
			var res swu.Result
			detail := ""
			if r.Last != nil {
				res, detail = r.Last.Result, r.Last.Detail
			}
			if res != tt.wantResult {
				t.Errorf("state.json last result %d (%q), want %d", res, detail, tt.wantResult)
			}
			for _, d := range tt.wantDetail {
				if !strings.Contains(detail, d) {
					t.Errorf("last detail %q does not contain %q", detail, d)
				}
			}
			for _, tmp := range []string{"a.tmp", "b.tmp", "current.tmp"} {
				if _, err := os.Lstat(filepath.Join(dir, tmp)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", tmp, err)
				}
			}
		})
	}
}

// TestSlotsLaunchBootCounting walks a version that never comes up: the
// restart by Install and each Launch count a start, and the start after
// MaxAttempts goes back to the previous version, whose outcome Confirm
// then reports. The version after it installs normally.
func TestSlotsLaunchBootCounting(t *testing.T) {
	var restarts []string
	s, dir := newSlots(t, func(c *SlotsConfig) {
		c.Restart = func(exe string) error { restarts = append(restarts, exe); return nil }
	})
	f := launchFixture{s: s, dir: dir, pkgDir: t.TempDir()}
	f.confirmed(t, "1.0.0")
	f.pending(t, "1.1.0", nil)
	if p := f.record(t).Pending; p == nil || p.Starts != 1 {
		t.Fatalf("after the restart by Install: pending %+v, want 1 start", p)
	}
	newExe := filepath.Join(dir, "b", "bin", "app")
	for start := 2; start <= DefaultMaxAttempts; start++ {
		exe, err := s.Launch()
		if err != nil || exe != newExe {
			t.Fatalf("start %d: Launch() = %q, %v", start, exe, err)
		}
		if p := f.record(t).Pending; p == nil || p.Starts != start || p.Attempts != 0 {
			t.Fatalf("start %d: pending %+v", start, p)
		}
	}
	exe, err := s.Launch()
	if err != nil || exe != filepath.Join(dir, "a", "bin", "app") {
		t.Fatalf("start %d: Launch() = %q, %v; want the old slot", DefaultMaxAttempts+1, exe, err)
	}
	const detail = "1.1.0 did not come up in 3 starts; rolled back to 1.0.0"
	wantStepError(t, s.Confirm(context.Background(), step0("1.1.0")), 8, detail)
	if st := mustStatus(t, s); st.Active != "1.0.0" || st.Pending != "" || st.LastDetail != detail {
		t.Fatalf("status %+v", st)
	}
	// Launch is idempotent once nothing is pending: the program it names
	// finds itself named again (the launcher compares and goes on).
	for range 2 {
		if again, err := s.Launch(); err != nil || again != exe {
			t.Fatalf("Launch() again = %q, %v; want %q", again, err, exe)
		}
	}
	// A later version is not blocked by the failed one, and starts afresh.
	f.pending(t, "1.2.0", nil)
	if p := f.record(t).Pending; p == nil || p.Starts != 1 || p.Slot != "b" {
		t.Fatalf("pending %+v", p)
	}
	if err := s.Confirm(context.Background(), step0("1.2.0")); err != nil {
		t.Fatal(err)
	}
	if len(restarts) != 3 {
		t.Fatalf("restarts %q", restarts)
	}
}

// TestSlotsLaunchBusy: another process holding the lock is an error, and
// nothing is counted.
func TestSlotsLaunchBusy(t *testing.T) {
	s, dir := newSlots(t, nil)
	f := launchFixture{s: s, dir: dir, pkgDir: t.TempDir()}
	f.pending(t, "1.1.0", nil)
	unlock, err := s.st.lock()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSlots(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := other.Launch()
	unlock()
	if !errors.Is(err, ErrBusy) || exe != "" {
		t.Fatalf("Launch() = %q, %v; want ErrBusy", exe, err)
	}
	if p := f.record(t).Pending; p == nil || p.Starts != 0 {
		t.Fatalf("pending %+v", p)
	}
}
