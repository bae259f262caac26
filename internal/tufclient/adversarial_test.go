package tufclient

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// Where an adversarial case must fail: the check already, or only the
// fetch after a check that found the package.
const (
	atCheck = "check"
	atFetch = "fetch"
)

// reclient replaces e's client; editD and editC (may be nil) change the
// downloader's and the client's configuration.
func (e *env) reclient(t *testing.T, root []byte, editD func(*fetch.Config), editC func(*Config)) {
	t.Helper()
	dcfg := e.dcfg
	if editD != nil {
		editD(&dcfg)
	}
	e.c = newClient(t, root, newDownloader(t, dcfg), editC)
}

func TestAdversarial(t *testing.T) {
	lampNew := pkgPath(model, newest)
	tests := []struct {
		name       string
		httpsOnly  bool
		mw         middleware
		setup      func(t *testing.T, e *env)
		at         string
		want       swu.Result
		wantDetail string // in the step.Error's text
	}{
		{
			name: "tampered package bytes",
			setup: func(t *testing.T, e *env) {
				e.repo.rewritePackage(t, lampNew, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
			},
			at: atFetch, want: swu.ResultValidation, wantDetail: "hash",
		},
		{
			name: "package one byte short",
			setup: func(t *testing.T, e *env) {
				e.repo.rewritePackage(t, lampNew, func(b []byte) []byte { return b[:len(b)-1] })
			},
			at: atFetch, want: swu.ResultValidation,
		},
		{
			name: "package one byte long",
			setup: func(t *testing.T, e *env) {
				e.repo.rewritePackage(t, lampNew, func(b []byte) []byte { return append(b, 0) })
			},
			at: atFetch, want: swu.ResultValidation,
		},
		{
			name: "package file missing",
			setup: func(t *testing.T, e *env) {
				for _, tg := range listTargets(t, e.repo) {
					if tg.Path == lampNew {
						for _, h := range tg.Hashes {
							removeServed(t, e.repo, tg.Path, h)
						}
					}
				}
			},
			at: atFetch, want: 404,
		},
		{
			name: "endless data", httpsOnly: true, mw: endlessFor(isTargetRequest),
			at: atFetch, want: swu.ResultValidation,
		},
		{
			name: "server error status for the package", httpsOnly: true,
			mw: statusFor(isTargetRequest, http.StatusServiceUnavailable),
			at: atFetch, want: 503,
		},
		{
			name: "forbidden metadata", httpsOnly: true,
			mw: statusFor(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "timestamp.json") }, http.StatusForbidden),
			at: atCheck, want: 403,
		},
		{
			name: "endless metadata", httpsOnly: true,
			mw: endlessFor(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "timestamp.json") }),
			at: atCheck, want: swu.ResultValidation, wantDetail: "more than",
		},
		{
			name:  "snapshot altered after signing",
			setup: func(t *testing.T, e *env) { e.repo.alterCurrentSnapshot(t) },
			at:    atCheck, want: swu.ResultValidation, wantDetail: "TUF snapshot metadata does not match the length or hash",
		},
		{
			name: "disk too small",
			setup: func(t *testing.T, e *env) {
				e.reclient(t, e.repo.root, func(c *fetch.Config) {
					c.FreeSpace = func(string) (int64, error) { return 10_000, nil }
				}, nil)
			},
			at: atFetch, want: swu.ResultNoFlash,
		},
		{
			name: "repository with another root",
			setup: func(t *testing.T, e *env) {
				e.reclient(t, emptyRepo(t).root, nil, nil)
			},
			at: atCheck, want: swu.ResultValidation, wantDetail: "not signed by enough trusted keys",
		},
		{
			name:  "targets signed by an untrusted key",
			setup: func(t *testing.T, e *env) { e.repo.forgeTargets(t) },
			at:    atCheck, want: swu.ResultValidation, wantDetail: "TUF targets metadata is not signed by enough trusted keys",
		},
		{
			name: "expired timestamp",
			setup: func(t *testing.T, e *env) {
				// Signed two days ago with the default one-day timestamp expiry.
				e.repo.publish(t, tufrepo.PublishOptions{Now: time.Now().Add(-48 * time.Hour)})
			},
			at: atCheck, want: swu.ResultValidation, wantDetail: "timestamp metadata expired on",
		},
		{
			name: "freeze: the same metadata replayed after it expired",
			setup: func(t *testing.T, e *env) {
				var skew atomic.Int64
				e.reclient(t, e.repo.root, nil, func(c *Config) {
					c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
				})
				if _, _, err := e.c.Check(t.Context(), withPURL(lamp, e.purl)); err != nil {
					t.Fatalf("Check before the freeze: %v", err)
				}
				skew.Store(int64(48 * time.Hour))
			},
			at: atCheck, want: swu.ResultValidation, wantDetail: "timestamp metadata expired on",
		},
		{
			name: "rollback to older metadata",
			setup: func(t *testing.T, e *env) {
				served := filepath.Join(e.repo.dir, "repository")
				old := filepath.Join(t.TempDir(), "old")
				copyTree(t, served, old)
				e.repo.publish(t, tufrepo.PublishOptions{})
				if _, _, err := e.c.Check(t.Context(), withPURL(lamp, e.purl)); err != nil {
					t.Fatalf("Check before the rollback: %v", err)
				}
				if err := os.RemoveAll(served); err != nil {
					t.Fatal(err)
				}
				copyTree(t, old, served)
			},
			at: atCheck, want: swu.ResultValidation, wantDetail: "older or unexpected version",
		},
		{
			name:  "purl pointing to a missing path",
			setup: func(t *testing.T, e *env) { e.purl += "/nope" },
			at:    atCheck, want: 404,
		},
		{
			name: "unreachable server", httpsOnly: true,
			setup: func(t *testing.T, e *env) { e.purl = "https://" + closedPort(t) },
			at:    atCheck, want: swu.ResultConnectionLost,
		},
		{
			name:  "unsupported scheme",
			setup: func(t *testing.T, e *env) { e.purl = "ftp://127.0.0.1/repo" },
			at:    atCheck, want: swu.ResultUnsupportedProt,
		},
		{
			name:  "coaps without credentials",
			setup: func(t *testing.T, e *env) { e.purl = "coaps://127.0.0.1:1/repo" },
			at:    atCheck, want: swu.ResultUnsupportedProt,
		},
		{
			name: "insecure scheme not allowed",
			setup: func(t *testing.T, e *env) {
				e.reclient(t, e.repo.root, func(c *fetch.Config) { c.AllowInsecure = false }, nil)
				e.purl = strings.Replace(strings.Replace(e.purl, "https://", "http://", 1), "coaps://", "coap://", 1)
			},
			at: atCheck, want: swu.ResultUnsupportedProt,
		},
		{
			name:  "malformed purl",
			setup: func(t *testing.T, e *env) { e.purl = "https://exa mple.com/repo" },
			at:    atCheck, want: swu.ResultInvalidURL,
		},
		{
			name:  "purl without host",
			setup: func(t *testing.T, e *env) { e.purl = "https:///repo" },
			at:    atCheck, want: swu.ResultInvalidURL,
		},
		{
			name:  "purl with a query",
			setup: func(t *testing.T, e *env) { e.purl += "/?token=1" },
			at:    atCheck, want: swu.ResultInvalidURL,
		},
		{
			name:  "empty purl",
			setup: func(t *testing.T, e *env) { e.purl = "" },
			at:    atCheck, want: swu.ResultInvalidURL,
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			if tt.httpsOnly && tr != "https" {
				continue
			}
			t.Run(tr+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, tr, tt.mw)
				if tt.setup != nil {
					tt.setup(t, e)
				}
				req := withPURL(lamp, e.purl)
				target, found, err := e.c.Check(t.Context(), req)
				if tt.at == atFetch {
					if err != nil || !found {
						t.Fatalf("Check = found %v, %v; the failure must come from the fetch", found, err)
					}
					_, err = e.c.Fetch(t.Context(), req, target, nil)
				}
				if got := steptest.ResultOf(err); got != tt.want {
					t.Fatalf("%s: result %d (%v), want %d", tt.at, got, err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.wantDetail) {
					t.Fatalf("%s: %q does not say %q", tt.at, err, tt.wantDetail)
				}
				t.Logf("%s: %v", tt.at, err)
				if s := staged(t, e.c); len(s) != 0 {
					t.Fatalf("a package is staged after a failure: %v", s)
				}
			})
		}
	}
}

// The connection drops in the middle of the package: the download resumes
// with a Range request and the package verifies.
func TestResumeAfterDroppedConnection(t *testing.T) {
	var mu sync.Mutex
	var ranges []string
	var cut atomic.Bool
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !isTargetRequest(r) {
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			if cut.CompareAndSwap(false, true) {
				w = &cutWriter{ResponseWriter: w, left: 20_000}
			}
			next.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, "https", mw)
	req := withPURL(lamp, e.purl)
	st, err := e.c.Fetch(t.Context(), req, step.Target{}, nil)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if data, _ := os.ReadFile(st.Path); !bytes.Equal(data, e.repo.pkgs[st.Target.Name]) {
		t.Fatal("staged bytes differ from the package")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Fatalf("package requests with Range %q, want a full request then a resumed one", ranges)
	}
}

// cutWriter drops the connection after left body bytes.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		_, _ = w.ResponseWriter.Write(p[:w.left])
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}

// endlessFor answers requests that match with a body that never ends.
func endlessFor(match func(*http.Request) bool) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			buf := bytes.Repeat([]byte{0xAA}, 4096)
			for r.Context().Err() == nil {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		})
	}
}

// statusFor answers requests that match with status.
func statusFor(match func(*http.Request) bool, status int) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				http.Error(w, http.StatusText(status), status)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func listTargets(t *testing.T, r *repo) []tufrepo.Target {
	t.Helper()
	tgs, err := tufrepo.ListTargets(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tgs, func(tg tufrepo.Target) bool { return tg.Published }) {
		t.Fatal("nothing published")
	}
	return tgs
}

// removeServed deletes the served file of target p named by hex digest h.
func removeServed(t *testing.T, r *repo, p, h string) {
	t.Helper()
	d, name := filepath.Split(filepath.FromSlash(p))
	if err := os.Remove(filepath.Join(r.dir, "repository", "targets", d, h+"."+name)); err != nil {
		t.Fatal(err)
	}
}
