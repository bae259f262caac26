package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestRateParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"4MiB", 4 << 20, true},
		{"512KiB", 512 << 10, true},
		{"512 KiB", 512 << 10, true},
		{" 2mib ", 2 << 20, true},
		{"1GiB", 1 << 30, true},
		{"100B", 100, true},
		{"8589934591GiB", 8589934591 << 30, true},
		{"", 0, false},
		{"abc", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"5XB", 0, false},
		{"4MB", 0, false}, // decimal units are refused, not guessed at
		{"4M", 0, false},
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{"4MiB/s", 0, false}, // a rate, not a size
		{"8589934592GiB", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRateParse(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"2MiB/s", 2 << 20, true},
		{"512KiB/s", 512 << 10, true},
		{"512KiB", 512 << 10, true},
		{"3145728", 3 << 20, true},
		{"1KiB/s", minRate, true},
		{"abc", 0, false},
		{"-1", 0, false},
		{"5XB", 0, false},
		{"5XB/s", 0, false},
		{"", 0, false},
		{"/s", 0, false},
		{"2MiB/h", 0, false},
		{"1023", 0, false}, // below minRate: the fetcher would take the server for stalled
		{"auto", 0, false}, // only the flag knows auto
	}
	for _, tt := range tests {
		got, err := parseRate(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestRateFormatRoundTrip: what the flags print as their defaults reads
// back to the same value.
func TestRateFormatRoundTrip(t *testing.T) {
	for _, n := range []int64{minRate, 1500, 1536, 3 << 20, 5<<30 + 1, defaultDemoRate, defaultDemoPackage} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), got, err)
		}
		if got, err := parseRate(formatRate(n)); err != nil || got != n {
			t.Errorf("parseRate(formatRate(%d) = %q) = %d, %v", n, formatRate(n), got, err)
		}
	}
	for n, want := range map[int64]string{4 << 20: "4 MiB", 3 << 19: "1.5 MiB", 512 << 10: "512 KiB", 100: "100 B", 1 << 30: "1 GiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRateFlag(t *testing.T) {
	var bps int64
	f := rateFlag{&bps}
	for _, tt := range []struct {
		in   string
		want int64
		str  string
	}{
		{"2MiB/s", 2 << 20, "2MiB/s"},
		{"auto", rateAuto, "auto"},
		{"0", 0, "0"},
	} {
		if err := f.Set(tt.in); err != nil || bps != tt.want || f.String() != tt.str {
			t.Errorf("Set(%q): %v, value %d %q; want %d %q", tt.in, err, bps, f.String(), tt.want, tt.str)
		}
	}
	bps = 7 << 20
	if err := f.Set("5XB"); err == nil || bps != 7<<20 {
		t.Errorf("Set(5XB): %v, value %d; want an error and the value kept", err, bps)
	}
	var size int64
	s := sizeFlag{&size}
	if err := s.Set("4MiB"); err != nil || size != 4<<20 || s.String() != "4MiB" {
		t.Errorf("size Set(4MiB): %v, %d %q", err, size, s.String())
	}
	if (rateFlag{}).String() != "" || (sizeFlag{}).String() != "" {
		t.Error("a zero flag value does not print as empty")
	}
}

// recordingWriter is a ResponseWriter that records the size of every
// Write and whether ReadFrom was used, which would bypass the limiter.
type recordingWriter struct {
	header   http.Header
	body     bytes.Buffer
	writes   []int
	readFrom bool
	onWrite  func()
}

func (w *recordingWriter) Header() http.Header { return w.header }
func (w *recordingWriter) WriteHeader(int)     {}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	if w.onWrite != nil {
		w.onWrite()
	}
	return w.body.Write(p)
}

func (w *recordingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return w.body.ReadFrom(r)
}

// serveBody is a handler that sends body as a file server does
// (http.ServeContent, which copies with io.CopyN) and keeps the error of
// its last write.
type serveBody struct {
	body []byte
	err  error
}

func (h *serveBody) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, h.err = io.Copy(w, bytes.NewReader(h.body))
}

// TestRateThrottleDelivers: every byte of a body reaches the client
// unchanged and in order, through the limiter in writes no larger than its
// burst, never through ReadFrom.
func TestRateThrottleDelivers(t *testing.T) {
	body := make([]byte, 1<<20+7) // not a multiple of the burst
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	lim := newByteLimiter(256 << 20) // fast: the test is about bytes, not time
	for _, tt := range []struct {
		name    string
		handler http.Handler
	}{
		{"io.Copy", &serveBody{body: body}},
		{"ServeContent", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "pkg.bin", time.Time{}, bytes.NewReader(body))
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordingWriter{header: http.Header{}}
			throttle(tt.handler, lim).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/pkg.bin", nil))
			if !bytes.Equal(w.body.Bytes(), body) {
				t.Fatalf("got %d bytes, want the %d sent, unchanged", w.body.Len(), len(body))
			}
			if w.readFrom {
				t.Error("the body went through ReadFrom, around the limiter")
			}
			for _, n := range w.writes {
				if n > lim.Burst() {
					t.Fatalf("a write of %d bytes, larger than the burst %d", n, lim.Burst())
				}
			}
		})
	}
	if h := (&serveBody{}); throttle(h, nil) != http.Handler(h) {
		t.Error("throttle without a limiter wraps the handler")
	}
}

// TestRateThrottleCancel: a request cancelled while its body waits for the
// limiter stops sending, and its handler sees the cancellation. The
// limiter is slow enough that the body would take over an hour.
func TestRateThrottleCancel(t *testing.T) {
	h := &serveBody{body: make([]byte, 4<<20)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &recordingWriter{header: http.Header{}, onWrite: cancel}
	lim := newByteLimiter(minRate)
	throttle(h, lim).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/pkg.bin", nil).WithContext(ctx))
	if !errors.Is(h.err, context.Canceled) {
		t.Errorf("handler's write error %v, want context.Canceled", h.err)
	}
	if len(w.writes) != 1 || w.body.Len() != lim.Burst() {
		t.Errorf("%d writes, %d bytes sent after the cancel; want 1 write of one burst (%d)", len(w.writes), w.body.Len(), lim.Burst())
	}
}

func TestRateLimiterBurst(t *testing.T) {
	for _, tt := range []struct {
		bps   int64
		burst int
	}{
		{minRate, minRate / 8},
		{3 << 20, 32 << 10},
		{1 << 30, 32 << 10},
		{64 << 10, 8 << 10},
	} {
		l := newByteLimiter(tt.bps)
		if l.Burst() != tt.burst || l.Limit() != rate.Limit(tt.bps) {
			t.Errorf("newByteLimiter(%d): limit %v burst %d, want burst %d", tt.bps, l.Limit(), l.Burst(), tt.burst)
		}
	}
}

// TestRateDemoFlags: --rate and --package-size reach the demo, and bad
// values are usage errors.
func TestRateDemoFlags(t *testing.T) {
	r := runCLI(t, "demo", "--non-interactive", "--devices", "1", "--package-size", "64KiB", "--rate", "64MiB/s")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}
	for _, want := range []string{"(64 KiB each)", "at most 64 MiB/s shared by all downloads (--rate)", "all 1 devices run 1.1.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"--rate", "abc"}, {"--rate", "-1"}, {"--rate", "5XB"}, {"--rate", "10"},
		{"--package-size", "5XB"}, {"--package-size", "0"}, {"--package-size", "2GiB"},
	} {
		if r := runCLI(t, append([]string{"demo", "--non-interactive"}, args...)...); r.code != exitUsage {
			t.Errorf("demo %s: exit %d, want %d (usage)", strings.Join(args, " "), r.code, exitUsage)
		}
	}
}
