package fetch

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// httpServer is an https package server whose behaviour per request is
// chosen by a test, and that records what it did.
type httpServer struct {
	*httptest.Server
	content pattern

	served atomic.Int64
	conns  atomic.Int64

	mu     sync.Mutex
	ranges []string // Range header of every request ("" for none)
	// handle serves request n (0-based); nil: serve normally.
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func newHTTPServer(t testing.TB, content pattern, handle func(n int, w http.ResponseWriter, r *http.Request)) *httpServer {
	t.Helper()
	s := &httpServer{content: content, handle: handle}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted handlers and bad handshakes are expected
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *httpServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.ranges)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	handle := s.handle
	s.mu.Unlock()
	cw := &countingWriter{ResponseWriter: w, served: &s.served, cut: -1}
	if handle != nil {
		handle(n, cw, r)
		return
	}
	s.serve(cw, r)
}

// serve answers with the content, honouring Range.
func (s *httpServer) serve(w http.ResponseWriter, r *http.Request) {
	http.ServeContent(w, r, "pkg.bin", time.Time{}, s.content.reader())
}

func (s *httpServer) setHandle(h func(n int, w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handle = h
}

func (s *httpServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *httpServer) url() string { return s.URL + "/pkg.bin" }

// countingWriter counts body bytes and, when cut >= 0, drops the
// connection after cut bytes of this response.
type countingWriter struct {
	http.ResponseWriter
	served  *atomic.Int64
	written int64
	cut     int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.cut >= 0 && w.written+int64(len(p)) > w.cut {
		p = p[:w.cut-w.written]
		n, _ := w.ResponseWriter.Write(p)
		w.served.Add(int64(n))
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	w.served.Add(int64(n))
	return n, err
}

func (w *countingWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// cutAfter serves normally but drops the connection after n body bytes.
func (s *httpServer) cutAfter(w http.ResponseWriter, r *http.Request, n int64) {
	w.(*countingWriter).cut = n
	s.serve(w, r)
}

func TestDownloadHTTPS(t *testing.T) {
	const size = 300_000
	content := pattern{size: size, seed: 1}
	other := pattern{size: size, seed: 2}

	tests := []struct {
		name   string
		handle func(s *httpServer) func(n int, w http.ResponseWriter, r *http.Request)
		// prepare runs before Download (e.g. leaves a .part behind).
		prepare      func(t *testing.T, dst string)
		cfg          func(*Config)
		want         swu.Result
		wantRequests int     // exact number of requests
		maxServed    float64 // bound on bytes served / size; 0: not checked
		wantRanges   []string
		wantPart     bool // the .part must remain after a failure
	}{
		{
			name: "success", want: swu.ResultSuccess, wantRequests: 1, maxServed: 1,
			wantRanges: []string{""},
		},
		{
			name: "server closes mid-transfer, resume with Range",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(n int, w http.ResponseWriter, r *http.Request) {
					if n < 2 {
						s.cutAfter(w, r, size/3)
						return
					}
					s.serve(w, r)
				}
			},
			want: swu.ResultSuccess, wantRequests: 3, maxServed: 1.5,
		},
		{
			name: "server ignores Range: restart from 0",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(n int, w http.ResponseWriter, r *http.Request) {
					r.Header.Del("Range")
					if n == 0 {
						s.cutAfter(w, r, size/2)
						return
					}
					s.serve(w, r)
				}
			},
			want: swu.ResultSuccess, wantRequests: 2, maxServed: 1.6,
		},
		{
			name: "404 is not retried",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }
			},
			want: 404, wantRequests: 1,
		},
		{
			name: "500 is retried, then reported",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
			},
			want: 500, wantRequests: 4, // 1 + MaxRetries
		},
		{
			name: "503 twice, then success",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(n int, w http.ResponseWriter, r *http.Request) {
					if n < 2 {
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					s.serve(w, r)
				}
			},
			want: swu.ResultSuccess, wantRequests: 3,
		},
		{
			name: "302 not followable (no Location) is unusable",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusFound) }
			},
			want: swu.ResultUnsupportedProt, wantRequests: 1,
		},
		{
			name: "endless data is cut off",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, r *http.Request) {
					chunk := make([]byte, 8192)
					for r.Context().Err() == nil {
						if _, err := w.Write(chunk); err != nil {
							return
						}
					}
				}
			},
			want: swu.ResultValidation, wantRequests: 1,
		},
		{
			name: "declared length larger than metadata fails before the body",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(size+1))
					w.WriteHeader(http.StatusOK)
				}
			},
			want: swu.ResultValidation, wantRequests: 1, maxServed: 0.01,
		},
		{
			name: "wrong content fails the hash",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, r *http.Request) {
					http.ServeContent(w, r, "x", time.Time{}, other.reader())
				}
			},
			want: swu.ResultValidation, wantRequests: 1,
		},
		{
			name: "short body with resume",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				// Every response stops 100 000 bytes in: progress every time.
				return func(_ int, w http.ResponseWriter, r *http.Request) { s.cutAfter(w, r, 100_000) }
			},
			want: swu.ResultSuccess, wantRequests: 3, maxServed: 1,
		},
		{
			name: "short body without progress gives up with 4",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, r *http.Request) { s.cutAfter(w, r, 0) }
			},
			want: swu.ResultConnectionLost, wantRequests: 4, // an empty .part is not kept
		},
		{
			name: "connection lost after progress keeps the .part",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 0 {
						s.cutAfter(w, r, 100_000)
						return
					}
					s.cutAfter(w, r, 0)
				}
			},
			want: swu.ResultConnectionLost, wantRequests: 4, wantPart: true,
		},
		{
			name: "server's file shorter than metadata (chunked, then 416)",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				short := pattern{size: size - 1000, seed: 1}
				return func(_ int, w http.ResponseWriter, r *http.Request) {
					if r.Header.Get("Range") != "" {
						http.ServeContent(w, r, "x", time.Time{}, short.reader())
						return
					}
					w.WriteHeader(http.StatusOK) // no Content-Length: chunked
					_, _ = io.Copy(w, short.reader())
				}
			},
			want: swu.ResultValidation, wantRequests: 1,
		},
		{
			name: "server's file shorter than the .part (416)",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				short := pattern{size: size - 1000, seed: 1}
				return func(_ int, w http.ResponseWriter, r *http.Request) {
					http.ServeContent(w, r, "x", time.Time{}, short.reader())
				}
			},
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes()[:size-500])
			},
			want: swu.ResultValidation, wantRequests: 1, wantRanges: []string{"bytes=299500-"},
		},
		{
			name: "killed agent: resume from an existing .part",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes()[:123_456])
			},
			want: swu.ResultSuccess, wantRequests: 1, maxServed: 0.6,
			wantRanges: []string{"bytes=123456-"},
		},
		{
			name: "stale .part: hash fails, one fresh download",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, other.bytes()[:100_000])
			},
			want: swu.ResultSuccess, wantRequests: 2,
			wantRanges: []string{"bytes=100000-", ""},
		},
		{
			name: ".part longer than the package is discarded",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, append(content.bytes(), 1, 2, 3))
			},
			want: swu.ResultSuccess, wantRequests: 1, wantRanges: []string{""},
		},
		{
			name: "complete .part from a killed agent: no request",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes())
			},
			want: swu.ResultSuccess, wantRequests: 0,
		},
		{
			name: "not enough free space",
			cfg: func(c *Config) {
				c.FreeSpace = func(string) (int64, error) { return size, nil } // no room for the margin
			},
			want: swu.ResultNoFlash, wantRequests: 0,
		},
		{
			name: "free space for the rest of a resumed .part is enough",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes()[:200_000])
			},
			cfg: func(c *Config) {
				c.FreeSpaceMargin = 4096
				c.FreeSpace = func(string) (int64, error) { return size - 200_000 + 4096, nil }
			},
			want: swu.ResultSuccess, wantRequests: 1,
		},
		{
			name: "one byte short of the free space needed",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes()[:200_000])
			},
			cfg: func(c *Config) {
				c.FreeSpaceMargin = 4096
				c.FreeSpace = func(string) (int64, error) { return size - 200_000 + 4095, nil }
			},
			want: swu.ResultNoFlash, wantRequests: 0, wantPart: true,
		},
		{
			name: "redirect to http is refused",
			handle: func(*httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(_ int, w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://127.0.0.1:1/pkg.bin", http.StatusFound)
				}
			},
			want: swu.ResultUnsupportedProt, wantRequests: 1,
		},
		{
			name: "redirect within https is followed",
			handle: func(s *httpServer) func(int, http.ResponseWriter, *http.Request) {
				return func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 0 {
						http.Redirect(w, r, "/elsewhere.bin", http.StatusFound)
						return
					}
					s.serve(w, r)
				}
			},
			want: swu.ResultSuccess, wantRequests: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHTTPServer(t, content, nil)
			if tt.handle != nil {
				srv.setHandle(tt.handle(srv))
			}
			cfg := fastConfig()
			trustServer(&cfg, srv.Server)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := newDownloader(t, cfg)
			dst := dstIn(t)
			if tt.prepare != nil {
				tt.prepare(t, dst)
			}
			var last [2]int64
			err := d.Download(context.Background(), srv.url(), dst, content.expect(t), func(done, total int64) {
				last = [2]int64{done, total}
			})
			if got := steptest.ResultOf(err); got != tt.want {
				t.Fatalf("result %d (%v), want %d", got, err, tt.want)
			}
			reqs := srv.requests()
			if len(reqs) != tt.wantRequests {
				t.Errorf("%d requests %q, want %d", len(reqs), reqs, tt.wantRequests)
			}
			if tt.wantRanges != nil && strings.Join(reqs, ",") != strings.Join(tt.wantRanges, ",") {
				t.Errorf("Range headers %q, want %q", reqs, tt.wantRanges)
			}
			if tt.maxServed > 0 {
				if served := srv.served.Load(); float64(served) > tt.maxServed*size {
					t.Errorf("served %d bytes for %d, more than %.2fx", served, size, tt.maxServed)
				}
			}
			if err == nil {
				checkFile(t, dst, content)
				if exists(t, dst+PartSuffix) {
					t.Error(".part left after success")
				}
				if last != [2]int64{size, size} {
					t.Errorf("last progress %v, want [%d %d]", last, size, size)
				}
				return
			}
			var se *step.Error
			if !errors.As(err, &se) || se.Detail == "" {
				t.Errorf("error %v is not a *step.Error with a detail", err)
			}
			if exists(t, dst) {
				t.Error("dst exists after a failure")
			}
			if got := exists(t, dst+PartSuffix); got != tt.wantPart {
				t.Errorf(".part exists = %v, want %v", got, tt.wantPart)
			}
		})
	}
}
