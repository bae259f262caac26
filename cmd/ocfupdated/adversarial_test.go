package main

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// packageFiles lists the package files of a published repository (the
// content-addressed names under repository/targets).
func packageFiles(t *testing.T, repo string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(repo, "repository", "targets"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// downloads lists the package downloads, partial (.part) or whole (.pkg),
// anywhere under the data directory dir.
func downloads(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".pkg")) {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// isPackage reports whether an HTTP request is for a package (not metadata).
func isPackage(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/targets/") }

// runUpdate asks for an upgrade and waits until the job is over (the
// action is idle again), whatever its result.
func runUpdate(t *testing.T, ep, purl string) client.Status {
	t.Helper()
	c, err := client.Dial(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Update(ctxT(t), "/oc/swu", client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	return waitStatus(t, c, func(s client.Status) bool { return s.Action == "idle" && s.State == "idle" })
}

// TestAdversarial: every way an update can go wrong leaves the device on
// its old version, in idle, with the right result and a detail that says
// what happened.
func TestAdversarial(t *testing.T) {
	fast := []string{"--fetch-retries", "2", "--fetch-backoff", "10ms", "--fetch-backoff-max", "50ms", "--fetch-timeout", "2s"}
	tests := []struct {
		name     string
		setup    func(t *testing.T, r *testRepo) // change the repository after publishing
		wrap     func(http.Handler) http.Handler // interpose on the HTTPS server
		purl     func(served string) string
		trust    func(t *testing.T, r *testRepo) string // root.json the device trusts
		model    string
		sv       string
		args     []string
		result   int
		detail   string
		detailRE *regexp.Regexp // when set, the detail must also match it
		// noFetch: the device must refuse before downloading: no package
		// request reaches the server and nothing is left in DATA.
		noFetch bool
	}{
		{name: "tampered package bytes", setup: func(t *testing.T, r *testRepo) {
			for _, f := range packageFiles(t, r.dir) {
				b, _ := os.ReadFile(f)
				b[len(b)/2]++ // the sha256 and sha512 names are hard links: changed twice, still changed
				if err := os.WriteFile(f, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, result: 5, detail: "hash"},
		{name: "wrong length", setup: func(t *testing.T, r *testRepo) {
			for _, f := range packageFiles(t, r.dir) {
				fh, _ := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
				fh.Write([]byte("trailing bytes"))
				fh.Close()
			}
		}, result: 5, detail: "metadata says"},
		{name: "signed by an untrusted key", trust: func(t *testing.T, _ *testRepo) string {
			return newRepo(t, "thermo", "1.0.0").root // another repository's root
		}, result: 5, detail: "trusted keys"},
		{name: "expired timestamp (freeze)", setup: func(t *testing.T, r *testRepo) {
			if _, err := tufrepo.Publish(r.dir, tufrepo.PublishOptions{Now: time.Now().Add(-72 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}, result: 5, detail: "expired"},
		{name: "older counter (rollback)", sv: "2.0.0", result: 0, detail: "no version newer than 2.0.0"},
		{name: "package for another model", model: "kettle", result: 0, detail: "no version newer"},
		{name: "package needs more RAM than any machine has", setup: func(t *testing.T, r *testRepo) {
			f := filepath.Join(t.TempDir(), "pkg-2.0.0.tar.gz")
			writePackage(t, f, "thermo", "2.0.0")
			if _, err := tufrepo.AddTarget(r.dir, f, "thermo", "2.0.0", tufrepo.AddOptions{MinRAM: 1 << 50}); err != nil {
				t.Fatal(err)
			}
			r.publish(t)
		}, result: 2, detail: "needs 1 PiB of RAM", noFetch: true,
			detailRE: regexp.MustCompile(`needs 1 PiB of RAM, [0-9.]+ ([KMGT]iB|bytes) available`)},
		{name: "404 source", purl: func(s string) string { return s + "/no/such/repo" }, result: 404},
		{name: "server closes mid-transfer", wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if isPackage(r) {
					w.Header().Set("Content-Length", "4000")
					w.WriteHeader(http.StatusOK)
					w.Write(make([]byte, 100))
					panic(http.ErrAbortHandler) // drops the connection
				}
				h.ServeHTTP(w, r)
			})
		}, args: fast, result: 4, detail: ""},
		{name: "endless data", wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if isPackage(r) {
					buf := make([]byte, 32<<10)
					for i := 0; i < 64; i++ { // 2 MiB, far beyond the signed length
						if _, err := w.Write(buf); err != nil {
							return
						}
					}
					return
				}
				h.ServeHTTP(w, r)
			})
		}, result: 5, detail: "more than"},
		{name: "unsupported scheme", purl: func(string) string { return "ftp://repo.example/r" }, result: 7},
		{name: "no purl and no vendor URL", purl: func(string) string { return "" }, result: 6},
		{name: "installer command failing", args: []string{"--installer", "exec", "--install-command", "sh -c exit\\ 3 {path}"}, result: 8, detail: "status"},
		{name: "health check failing (rollback)", args: []string{"--health-command", "false"}, result: 8, detail: "rolled back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo(t, "thermo", "1.0.0", "1.1.0")
			if tt.setup != nil {
				tt.setup(t, r)
			}
			var pkgRequests atomic.Int64
			wrap := tt.wrap
			if tt.noFetch {
				wrap = func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if isPackage(r) {
							pkgRequests.Add(1)
						}
						h.ServeHTTP(w, r)
					})
				}
			}
			served, ca := r.serveHTTPS(t, wrap)
			purl := served
			if tt.purl != nil {
				purl = tt.purl(served)
			}
			trust := r.root
			if tt.trust != nil {
				trust = tt.trust(t, r)
			}
			model, sv := "thermo", "1.0.0"
			if tt.model != "" {
				model = tt.model
			}
			if tt.sv != "" {
				sv = tt.sv
			}
			args := append([]string{"--trust", trust, "--ca", ca, "--model", model, "--version", sv, "--restart=false"}, tt.args...)
			data := t.TempDir()
			d := startDaemon(t, data, args...)
			s := runUpdate(t, d.Endpoint, purl)
			t.Logf("result %d: %s", s.Result, s.Detail)
			if s.Result != tt.result || !strings.Contains(s.Detail, tt.detail) || s.Detail == "" || s.NV != "" {
				t.Errorf("result %d, detail %q (nv %q); want %d with %q", s.Result, s.Detail, s.NV, tt.result, tt.detail)
			}
			if tt.detailRE != nil && !tt.detailRE.MatchString(s.Detail) {
				t.Errorf("detail %q does not match %s", s.Detail, tt.detailRE)
			}
			if got := deviceSV(t, d.Endpoint); got != sv {
				t.Errorf("sv %q, want the old %q", got, sv)
			}
			if tt.noFetch {
				if n := pkgRequests.Load(); n != 0 {
					t.Errorf("%d package requests, want none", n)
				}
				if left := downloads(t, data); len(left) != 0 {
					t.Errorf("downloads left in the data directory: %v", left)
				}
			}
		})
	}
}
