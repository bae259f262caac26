package tufclient

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// env is one repository served over one transport, with a client.
type env struct {
	repo *repo
	purl string
	c    *Client
	dcfg fetch.Config // the downloader's configuration, for reclient
}

// transports are the two ways a device reaches a repository.
var transports = []string{"https", "coap"}

// newEnv serves the standard repository over tr and makes a client that
// trusts it.
func newEnv(t *testing.T, tr string, mw middleware) *env {
	t.Helper()
	r := newRepo(t)
	return serveEnv(t, r, tr, mw)
}

func serveEnv(t *testing.T, r *repo, tr string, mw middleware) *env {
	t.Helper()
	e := &env{repo: r}
	switch tr {
	case "https":
		srv := serveHTTPS(t, r, mw)
		e.purl, e.dcfg = srv.URL, downloaderConfig(srv)
	case "coap":
		e.purl, e.dcfg = serveCoAP(t, r), downloaderConfig(nil)
	default:
		t.Fatalf("unknown transport %s", tr)
	}
	e.c = newClient(t, r.root, newDownloader(t, e.dcfg), nil)
	return e
}

func TestCheckAndFetch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, tr, nil)
			req := withPURL(lamp, e.purl)
			got, found, err := e.c.Check(t.Context(), req)
			if err != nil || !found {
				t.Fatalf("Check: found=%v err=%v", found, err)
			}
			want := step.Target{Version: newest, Name: pkgPath(model, newest),
				Length: int64(len(e.repo.pkgs[pkgPath(model, newest)])), Counter: 2}
			if got != want {
				t.Fatalf("Check = %+v, want %+v", got, want)
			}

			var calls, last, total int64
			st, err := e.c.Fetch(t.Context(), req, got, func(done, tot int64) { calls++; last, total = done, tot })
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if st.Target != want {
				t.Fatalf("staged target %+v, want %+v", st.Target, want)
			}
			data, err := os.ReadFile(st.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, e.repo.pkgs[want.Name]) {
				t.Fatalf("staged %d bytes that differ from the package", len(data))
			}
			if filepath.Dir(st.Path) != e.c.cfg.StagingDir || !strings.HasSuffix(st.Path, stagedSuffix) {
				t.Fatalf("staged at %s, want *%s in %s", st.Path, stagedSuffix, e.c.cfg.StagingDir)
			}
			if calls == 0 || last != want.Length || total != want.Length {
				t.Fatalf("progress: %d calls, last %d/%d, want ending at %d/%d", calls, last, total, want.Length, want.Length)
			}
		})
	}
}

func TestCheckSelection(t *testing.T) {
	r := newRepo(t)
	srv := serveHTTPS(t, r, nil)
	d := newDownloader(t, downloaderConfig(srv))
	tests := []struct {
		name        string
		req         step.CheckRequest
		wantVersion string // "": nothing newer
	}{
		{"installed counter 1", lamp, newest},
		{"factory image by version", step.CheckRequest{Model: model, InstalledVersion: "1.0.0"}, newest},
		{"nothing installed", step.CheckRequest{Model: model}, newest},
		{"up to date", step.CheckRequest{Model: model, InstalledVersion: newest, InstalledCounter: 2}, ""},
		{"installed is newer than the repository (rollback)", step.CheckRequest{Model: model, InstalledVersion: "3.0.0", InstalledCounter: 7}, ""},
		{"factory version newer than the repository", step.CheckRequest{Model: model, InstalledVersion: "2.0.0"}, ""},
		{"packages only for another model", step.CheckRequest{Model: "fan-9", InstalledVersion: "0.1.0"}, ""},
		{"other model has its own counter", step.CheckRequest{Model: "plug-2", InstalledCounter: 2}, ""},
		{"other model", step.CheckRequest{Model: "plug-2", InstalledVersion: "0.1.0"}, "0.9.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, r.root, d, nil)
			got, found, err := c.Check(t.Context(), withPURL(tt.req, srv.URL))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.wantVersion == "" {
				if found {
					t.Fatalf("found %+v, want nothing newer", got)
				}
				return
			}
			if !found || got.Version != tt.wantVersion {
				t.Fatalf("found=%v %+v, want version %s", found, got, tt.wantVersion)
			}
		})
	}
}

func TestCheckOnlyOlderPublished(t *testing.T) {
	r := emptyRepo(t)
	r.add(t, model, "1.0.0", 100)
	r.publish(t, tufrepo.PublishOptions{})
	srv := serveHTTPS(t, r, nil)
	c := newClient(t, r.root, newDownloader(t, downloaderConfig(srv)), nil)
	if got, found, err := c.Check(t.Context(), withPURL(lamp, srv.URL)); err != nil || found {
		t.Fatalf("Check = %+v found=%v err=%v, want nothing newer", got, found, err)
	}
	// Fetch without a target has nothing to fetch either.
	_, err := c.Fetch(t.Context(), withPURL(lamp, srv.URL), step.Target{}, nil)
	if steptest.ResultOf(err) != swu.ResultIdle || !errors.Is(err, ErrNoUpdate) {
		t.Fatalf("Fetch = %v (result %d), want ErrNoUpdate with result 0", err, steptest.ResultOf(err))
	}
}

func TestFetchWithoutCheck(t *testing.T) {
	e := newEnv(t, "https", nil)
	st, err := e.c.Fetch(t.Context(), withPURL(lamp, e.purl), step.Target{}, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if st.Target.Version != newest || st.Target.Counter != 2 {
		t.Fatalf("fetched %+v, want %s counter 2", st.Target, newest)
	}
	if data, _ := os.ReadFile(st.Path); !bytes.Equal(data, e.repo.pkgs[st.Target.Name]) {
		t.Fatal("staged bytes differ from the package")
	}
}

func TestFetchNamedTargetMustStillQualify(t *testing.T) {
	e := newEnv(t, "https", nil)
	tests := []struct {
		name string
		req  step.CheckRequest
		want string
		err  error
	}{
		{"withdrawn", lamp, pkgPath(model, "9.9.9"), ErrWithdrawn},
		{"another model's package", lamp, pkgPath("plug-2", "0.9.0"), ErrWrongModel},
		{"not above the installed counter", lamp, pkgPath(model, "1.0.0"), ErrNotNewer},
		{"not above the installed version", step.CheckRequest{Model: model, InstalledVersion: newest}, pkgPath(model, newest), ErrNotNewer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.c.Fetch(t.Context(), withPURL(tt.req, e.purl), step.Target{Name: tt.want, Version: "x"}, nil)
			if steptest.ResultOf(err) != swu.ResultValidation || !errors.Is(err, tt.err) {
				t.Fatalf("Fetch = %v (result %d), want result 5 and %v", err, steptest.ResultOf(err), tt.err)
			}
			if s := staged(t, e.c); len(s) != 0 {
				t.Fatalf("staged %v", s)
			}
		})
	}
}

func TestFetchReusesVerifiedPackage(t *testing.T) {
	var pkgRequests atomic.Int64
	r := newRepo(t)
	e := serveEnv(t, r, "https", countTargets(&pkgRequests))
	req := withPURL(lamp, e.purl)
	first, err := e.c.Fetch(t.Context(), req, step.Target{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := pkgRequests.Load()
	second, err := e.c.Fetch(t.Context(), req, first.Target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Fatalf("second fetch %+v, first %+v", second, first)
	}
	if got := pkgRequests.Load(); got != n {
		t.Fatalf("second fetch made %d package requests, want none", got-n)
	}
}

func TestFetchReplacesOlderStagedPackage(t *testing.T) {
	e := newEnv(t, "https", nil)
	old := filepath.Join(e.c.cfg.StagingDir, "0123abcd"+stagedSuffix)
	oldPart := old + ".part"
	other := filepath.Join(e.c.cfg.StagingDir, "notes.txt")
	for _, p := range []string{old, oldPart, other} {
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.c.Fetch(t.Context(), withPURL(lamp, e.purl), step.Target{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := staged(t, e.c); len(s) != 1 || s[0] != st.Path {
		t.Fatalf("staged %v, want only %s", s, st.Path)
	}
	if _, err := os.Stat(oldPart); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("older partial download kept: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("unrelated file removed: %v", err)
	}
}

func TestDiscard(t *testing.T) {
	e := newEnv(t, "https", nil)
	st, err := e.c.Fetch(t.Context(), withPURL(lamp, e.purl), step.Target{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(e.c.cfg.StagingDir, "ffff"+stagedSuffix+".part")
	other := filepath.Join(e.c.cfg.StagingDir, "keep.me")
	for _, p := range []string{part, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.c.Discard(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{st.Path, part} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Discard: %v", p, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
	if err := e.c.Discard(); err != nil {
		t.Fatalf("second Discard: %v", err)
	}
}

// Keys rotate between a check and the fetch that follows it: the fetch
// follows the new root chain, and the device keeps the newest root.
func TestKeyRotationBetweenCheckAndFetch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			e := newEnv(t, tr, nil)
			req := withPURL(lamp, e.purl)
			target, found, err := e.c.Check(t.Context(), req)
			if err != nil || !found {
				t.Fatalf("Check: %v %v", found, err)
			}
			for _, role := range []string{tufrepo.RoleTargets, tufrepo.RoleRoot} {
				if _, err := tufrepo.RotateKey(e.repo.dir, role, tufrepo.RotateOptions{}); err != nil {
					t.Fatalf("RotateKey %s: %v", role, err)
				}
			}
			st, err := e.c.Fetch(t.Context(), req, target, nil)
			if err != nil {
				t.Fatalf("Fetch after rotation: %v", err)
			}
			if data, _ := os.ReadFile(st.Path); !bytes.Equal(data, e.repo.pkgs[target.Name]) {
				t.Fatal("staged bytes differ from the package")
			}
			base, err := repoURL(e.purl)
			if err != nil {
				t.Fatal(err)
			}
			root, err := metadata.Root().FromBytes(e.c.startRoot(e.c.cacheDir(base)))
			if err != nil {
				t.Fatal(err)
			}
			if root.Signed.Version != 3 {
				t.Fatalf("chain starts from root %d, want the rotated root 3", root.Signed.Version)
			}
		})
	}
}

// After a key rotation the device never trusts the old keys again, even
// when a repository signed with them shows up with newer versions and
// without the new roots: the chain starts from the cached root, not from
// the configured one.
func TestRotatedKeysAreNotTrustedAgain(t *testing.T) {
	e := newEnv(t, "https", nil)
	req := withPURL(lamp, e.purl)
	if _, _, err := e.c.Check(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	// The attacker keeps a copy of the repository and its keys from before
	// the rotation.
	stolen := filepath.Join(t.TempDir(), "stolen")
	copyTree(t, e.repo.dir, stolen)
	if _, err := tufrepo.RotateKey(e.repo.dir, tufrepo.RoleTimestamp, tufrepo.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.c.Check(t.Context(), req); err != nil {
		t.Fatalf("Check after rotation: %v", err)
	}
	// Versions above everything the device has seen, signed with the
	// retired timestamp key, under root 1 only.
	for range 2 {
		if _, err := tufrepo.Publish(stolen, tufrepo.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	served := filepath.Join(e.repo.dir, "repository")
	if err := os.RemoveAll(served); err != nil {
		t.Fatal(err)
	}
	copyTree(t, filepath.Join(stolen, "repository"), served)

	_, _, err := e.c.Check(t.Context(), req)
	if steptest.ResultOf(err) != swu.ResultValidation || !strings.Contains(err.Error(), "timestamp metadata is not signed by enough trusted keys") {
		t.Fatalf("Check against the retired key = %v (result %d), want result 5 for the timestamp signature", err, steptest.ResultOf(err))
	}
}

// Calls from several goroutines are serialised and all succeed.
func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t, "https", nil)
	req := withPURL(lamp, e.purl)
	errs := make(chan error, 4)
	for i := range cap(errs) {
		go func() {
			var err error
			if i%2 == 0 {
				_, _, err = e.c.Check(t.Context(), req)
			} else {
				_, err = e.c.Fetch(t.Context(), req, step.Target{}, nil)
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// A cached file emptied by a crash must not break every later check.
func TestCorruptCacheRecovers(t *testing.T) {
	e := newEnv(t, "https", nil)
	req := withPURL(lamp, e.purl)
	if _, _, err := e.c.Check(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	base, _ := repoURL(e.purl)
	cache := e.c.cacheDir(base)
	for _, name := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		if err := os.WriteFile(filepath.Join(cache, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, found, err := e.c.Check(t.Context(), req); err != nil || !found || got.Version != newest {
		t.Fatalf("Check with a corrupt cache = %+v %v %v", got, found, err)
	}
}

// Switching the purl to another repository (with another root) starts a
// separate cache instead of mixing metadata.
func TestCachePerRepository(t *testing.T) {
	a, b := newRepo(t), newRepo(t)
	srvA, srvB := serveHTTPS(t, a, nil), serveHTTPS(t, b, nil)
	d := newDownloader(t, downloaderConfig(srvA))
	d2 := newDownloader(t, downloaderConfig(srvB))
	cacheDir := filepath.Join(t.TempDir(), "tuf")
	ca := newClient(t, a.root, d, func(c *Config) { c.CacheDir = cacheDir })
	cb := newClient(t, b.root, d2, func(c *Config) { c.CacheDir = cacheDir })
	for i := range 2 {
		if _, found, err := ca.Check(t.Context(), withPURL(lamp, srvA.URL)); err != nil || !found {
			t.Fatalf("round %d, repository a: %v %v", i, found, err)
		}
		if _, found, err := cb.Check(t.Context(), withPURL(lamp, srvB.URL)); err != nil || !found {
			t.Fatalf("round %d, repository b: %v %v", i, found, err)
		}
	}
	entries, err := os.ReadDir(cacheDir)
	if err != nil || len(entries) != 2 {
		t.Fatalf("cache holds %d entries, want one per repository (%v)", len(entries), err)
	}
}

func TestCancelledIsNotAFailure(t *testing.T) {
	e := newEnv(t, "https", nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := e.c.Check(ctx, withPURL(lamp, e.purl))
	if !errors.Is(err, context.Canceled) || steptest.ResultOf(err) != -1 {
		t.Fatalf("Check with cancelled ctx = %v, want context.Canceled and no step.Error", err)
	}
	_, err = e.c.Fetch(ctx, withPURL(lamp, e.purl), step.Target{}, nil)
	if !errors.Is(err, context.Canceled) || steptest.ResultOf(err) != -1 {
		t.Fatalf("Fetch with cancelled ctx = %v, want context.Canceled and no step.Error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	r := emptyRepo(t)
	d := newDownloader(t, downloaderConfig(nil))
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no root", func(c *Config) { c.TrustedRoot = nil }, "no trusted root"},
		{"root not JSON", func(c *Config) { c.TrustedRoot = []byte("{") }, "trusted root"},
		{"root not self-signed", func(c *Config) { c.TrustedRoot = unsignedRoot(t, r.root) }, "trusted root"},
		{"no cache", func(c *Config) { c.CacheDir = "" }, "cache"},
		{"no staging", func(c *Config) { c.StagingDir = "" }, "staging"},
		{"no downloader", func(c *Config) { c.Downloader = nil }, "downloader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{TrustedRoot: r.root, CacheDir: t.TempDir(), StagingDir: t.TempDir(), Downloader: d}
			tt.edit(&cfg)
			_, err := New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// unsignedRoot is root with its signatures removed.
func unsignedRoot(t *testing.T, root []byte) []byte {
	t.Helper()
	m, err := metadata.Root().FromBytes(root)
	if err != nil {
		t.Fatal(err)
	}
	m.ClearSignatures()
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
