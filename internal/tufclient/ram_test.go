package tufclient

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
	"github.com/ocfupdate/ocfupdate/internal/sysmem"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

// fakeMem is a hand-written sysmem.AvailableFunc that counts its calls.
type fakeMem struct {
	avail uint64
	err   error
	calls atomic.Int64
}

func (f *fakeMem) available() (uint64, error) {
	f.calls.Add(1)
	return f.avail, f.err
}

var _ sysmem.AvailableFunc = (&fakeMem{}).available

// ramRepo is the standard lamp repository whose newest package (1.1.0)
// needs minRAM bytes of RAM.
func ramRepo(t *testing.T, minRAM uint64) *repo {
	t.Helper()
	r := emptyRepo(t)
	r.add(t, model, "1.0.0", 3000)
	r.addWith(t, model, newest, 70_000, tufrepo.AddOptions{MinRAM: minRAM})
	r.publish(t, tufrepo.PublishOptions{})
	return r
}

// The device compares a package's min_ram with the memory available
// before it downloads a byte: too little is result 2 with both amounts in
// the detail, enough or unknown lets the download go ahead.
func TestFetchChecksRAM(t *testing.T) {
	tests := []struct {
		name       string
		minRAM     uint64
		avail      uint64     // what the fake memory reader says
		memErr     error      // or this
		want       swu.Result // 1: fetched
		wantDetail string
		wantCalls  int64 // of the memory reader, per Fetch
	}{
		{name: "too little", minRAM: 512 * mib, avail: 120 * mib,
			want: swu.ResultNoRAM, wantDetail: "needs 512 MiB of RAM, 120 MiB available", wantCalls: 1},
		{name: "one byte too little", minRAM: 512 * mib, avail: 512*mib - 1,
			want: swu.ResultNoRAM, wantDetail: "needs 512 MiB of RAM, 511.9 MiB available", wantCalls: 1},
		{name: "exactly enough", minRAM: 512 * mib, avail: 512 * mib, want: swu.ResultSuccess, wantCalls: 1},
		{name: "plenty", minRAM: 512 * mib, avail: 8 * gib, want: swu.ResultSuccess, wantCalls: 1},
		{name: "unknown: fetched anyway", minRAM: 512 * mib, memErr: sysmem.ErrNoField, want: swu.ResultSuccess, wantCalls: 1},
		{name: "no requirement: not even asked", minRAM: 0, avail: 1, want: swu.ResultSuccess, wantCalls: 0},
	}
	for _, tt := range tests {
		for _, withCheck := range []bool{true, false} {
			name := tt.name + "/isvv without check"
			if withCheck {
				name = tt.name + "/after check"
			}
			t.Run(name, func(t *testing.T) {
				var pkgRequests atomic.Int64
				e := serveEnv(t, ramRepo(t, tt.minRAM), "https", countTargets(&pkgRequests))
				mem := &fakeMem{avail: tt.avail, err: tt.memErr}
				e.reclient(t, e.repo.root, nil, func(c *Config) { c.MemAvailable = mem.available })
				req := withPURL(lamp, e.purl)
				var want step.Target
				if withCheck {
					var found bool
					var err error
					want, found, err = e.c.Check(t.Context(), req)
					if err != nil || !found || want.MinRAM != tt.minRAM {
						t.Fatalf("Check = %+v found=%v %v; want min_ram %d", want, found, err, tt.minRAM)
					}
				}
				st, err := e.c.Fetch(t.Context(), req, want, nil)
				if got := steptest.ResultOf(err); got != tt.want {
					t.Fatalf("Fetch: result %d (%v), want %d", got, err, tt.want)
				}
				if n := mem.calls.Load(); n != tt.wantCalls {
					t.Errorf("memory read %d times, want %d", n, tt.wantCalls)
				}
				if tt.want == swu.ResultSuccess {
					if st.Target.MinRAM != tt.minRAM || pkgRequests.Load() == 0 {
						t.Fatalf("staged %+v after %d package requests", st.Target, pkgRequests.Load())
					}
					return
				}
				var se *step.Error
				if !errors.As(err, &se) || !strings.Contains(se.Detail, tt.wantDetail) || !errors.Is(err, ErrNoRAM) {
					t.Fatalf("Fetch error %v: want ErrNoRAM with a detail saying %q", err, tt.wantDetail)
				}
				if n := pkgRequests.Load(); n != 0 {
					t.Fatalf("%d package requests before refusing: want none", n)
				}
				if files := stagingFiles(t, e.c); len(files) != 0 {
					t.Fatalf("staging directory holds %v, want nothing", files)
				}
			})
		}
	}
}

// A refused package leaves an earlier download alone: the RAM check runs
// before anything in the staging directory is touched.
func TestFetchNoRAMTouchesNothing(t *testing.T) {
	e := serveEnv(t, ramRepo(t, 4*gib), "https", nil)
	mem := &fakeMem{avail: gib}
	e.reclient(t, e.repo.root, nil, func(c *Config) { c.MemAvailable = mem.available })
	old := filepath.Join(e.c.cfg.StagingDir, "0123abcd"+stagedSuffix+".part")
	if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Fetch(t.Context(), withPURL(lamp, e.purl), step.Target{}, nil)
	if steptest.ResultOf(err) != swu.ResultNoRAM {
		t.Fatalf("Fetch = %v, want result 2", err)
	}
	if files := stagingFiles(t, e.c); len(files) != 1 || files[0] != filepath.Base(old) {
		t.Fatalf("staging directory holds %v, want only the earlier %s", files, filepath.Base(old))
	}
}

// A min_ram the device cannot read is signed metadata it cannot use:
// result 5 at the check already, and for a fetch with or without a named
// target; never an older package instead, never a download. (Fractions
// and numbers beyond 64 bits cannot be signed at all: TUF's canonical JSON
// refuses floating point; tufrepo's tests parse them.)
func TestMalformedMinRAM(t *testing.T) {
	for _, bad := range []string{`-1`, `"512MiB"`, `true`, `{"bytes":1}`, `[1]`} {
		t.Run(bad, func(t *testing.T) {
			r := emptyRepo(t)
			r.add(t, model, "1.0.0", 3000)
			r.add(t, model, "1.0.5", 3000)
			name := r.add(t, model, newest, 3000)
			setStagedCustom(t, r, name, `{"model":"lamp-1","version":"1.1.0","counter":3,"min_ram":`+bad+`}`)
			r.publish(t, tufrepo.PublishOptions{})
			var pkgRequests atomic.Int64
			e := serveEnv(t, r, "https", countTargets(&pkgRequests))
			req := withPURL(lamp, e.purl)

			_, found, err := e.c.Check(t.Context(), req)
			if steptest.ResultOf(err) != swu.ResultValidation || found || !strings.Contains(err.Error(), "malformed min_ram") {
				t.Fatalf("Check = found %v, %v; want result 5 about min_ram (not 1.0.5)", found, err)
			}
			_, err = e.c.Fetch(t.Context(), req, step.Target{}, nil)
			if steptest.ResultOf(err) != swu.ResultValidation || !errors.Is(err, tufrepo.ErrRequirement) {
				t.Fatalf("Fetch without a target = %v, want result 5 and ErrRequirement", err)
			}
			_, err = e.c.Fetch(t.Context(), req, step.Target{Name: name, Version: newest}, nil)
			if steptest.ResultOf(err) != swu.ResultValidation || !errors.Is(err, tufrepo.ErrRequirement) || !strings.Contains(err.Error(), name) {
				t.Fatalf("Fetch of %s = %v, want result 5 naming it", name, err)
			}
			if n := pkgRequests.Load(); n != 0 {
				t.Fatalf("%d package requests, want none", n)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 bytes"},
		{1023, "1023 bytes"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{120 * mib, "120 MiB"},
		{512*mib - 1, "511.9 MiB"},
		{1023 * mib, "1023 MiB"},
		{gib, "1 GiB"},
		{1 << 50, "1 PiB"},
		{1<<64 - 1, "15.9 EiB"},
	}
	for _, tt := range tests {
		if got := formatBytes(tt.n); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// setStagedCustom replaces the custom metadata of staged target p, as a
// hand-edited repository (or another tool) might sign it.
func setStagedCustom(t *testing.T, r *repo, p, custom string) {
	t.Helper()
	file := filepath.Join(r.dir, "staged", "targets.json")
	tg, err := metadata.Targets().FromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(custom)
	tg.Signed.Targets[p].Custom = &raw
	b, err := tg.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stagingFiles lists the names in the client's staging directory.
func stagingFiles(t *testing.T, c *Client) []string {
	t.Helper()
	entries, err := os.ReadDir(c.cfg.StagingDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
