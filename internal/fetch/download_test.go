package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestDownloadUntrustedCertificate(t *testing.T) {
	content := pattern{size: 1000}
	srv := newHTTPServer(t, content, nil)
	cfg := fastConfig()
	cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12} // trusts nothing
	d := newDownloader(t, cfg)
	dst := dstIn(t)

	err := d.Download(context.Background(), srv.url(), dst, content.expect(t), nil)
	if got := steptest.ResultOf(err); got != swu.ResultValidation {
		t.Fatalf("result %d (%v), want 5", got, err)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a certificate failure is not retried", n)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests reached the handler", n)
	}
}

func TestDownloadHTTPSToPlainServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	d := newDownloader(t, fastConfig())
	url := "https://" + strings.TrimPrefix(srv.URL, "http://") + "/pkg"
	err := d.Download(context.Background(), url, dstIn(t), pattern{size: 10}.expect(t), nil)
	if got := steptest.ResultOf(err); got != swu.ResultUnsupportedProt {
		t.Fatalf("result %d (%v), want 7", got, err)
	}
}

func TestDownloadInsecureHTTP(t *testing.T) {
	content := pattern{size: 5000, seed: 3}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "x", time.Time{}, content.reader())
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/pkg"

	strict := newDownloader(t, fastConfig())
	if got := steptest.ResultOf(strict.Download(context.Background(), url, dstIn(t), content.expect(t), nil)); got != swu.ResultUnsupportedProt {
		t.Fatalf("http without AllowInsecure: result %d, want 7", got)
	}

	cfg := fastConfig()
	cfg.AllowInsecure = true
	lax := newDownloader(t, cfg)
	dst := dstIn(t)
	if err := lax.Download(context.Background(), url, dst, content.expect(t), nil); err != nil {
		t.Fatalf("http with AllowInsecure: %v", err)
	}
	checkFile(t, dst, content)
}

func TestDownloadBadURL(t *testing.T) {
	d := newDownloader(t, fastConfig())
	tests := []struct {
		url    string
		want   swu.Result
		detail string
	}{
		{url: "", want: swu.ResultInvalidURL},
		{url: "https://[::1/x", want: swu.ResultInvalidURL},
		{url: "https:///no-host", want: swu.ResultInvalidURL},
		{url: "https://host:99999/x", want: swu.ResultInvalidURL},
		{url: "repo.example.com:8443/pkg", want: swu.ResultInvalidURL},
		{url: "/just/a/path", want: swu.ResultInvalidURL},
		{url: "ftp://example.com/pkg", want: swu.ResultUnsupportedProt},
		{url: "file:///etc/passwd", want: swu.ResultUnsupportedProt},
		{url: "http://example.com/pkg", want: swu.ResultUnsupportedProt},
		{url: "coap://example.com/pkg", want: swu.ResultUnsupportedProt},
		{url: "coaps://127.0.0.1:1/pkg", want: swu.ResultUnsupportedProt, detail: "coaps needs credentials (not configured)"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			dst := dstIn(t)
			err := d.Download(context.Background(), tt.url, dst, pattern{size: 10}.expect(t), nil)
			if got := steptest.ResultOf(err); got != tt.want {
				t.Fatalf("result %d (%v), want %d", got, err, tt.want)
			}
			var se *step.Error
			if errors.As(err, &se) && tt.detail != "" && se.Detail != tt.detail {
				t.Errorf("detail %q, want %q", se.Detail, tt.detail)
			}
			if exists(t, dst+PartSuffix) {
				t.Error(".part created for an unusable URL")
			}
		})
	}
}

func TestDownloadCancelKeepsPart(t *testing.T) {
	const size = 400_000
	content := pattern{size: size, seed: 4}
	release := make(chan struct{})
	srv := newHTTPServer(t, content, nil)
	srv.setHandle(func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 0 {
			srv.serve(w, r)
			return
		}
		// Send half, then hold the connection open until the client goes.
		w.Header().Set("Content-Length", "400000")
		_, _ = w.Write(content.bytes()[:size/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	cfg := fastConfig()
	cfg.Timeout = time.Hour // only cancellation can end the first attempt
	trustServer(&cfg, srv.Server)
	d := newDownloader(t, cfg)
	dst := dstIn(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := d.Download(ctx, srv.url(), dst, content.expect(t), func(done, _ int64) {
		if done >= size/2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	var se *step.Error
	if errors.As(err, &se) {
		t.Fatalf("cancellation reported as result %d", se.Result)
	}
	if got := fileSize(t, dst+PartSuffix); got != size/2 {
		t.Fatalf(".part has %d bytes, want %d", got, size/2)
	}

	// The next run continues where the cancelled one stopped.
	if err := d.Download(context.Background(), srv.url(), dst, content.expect(t), nil); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dst, content)
	if reqs := srv.requests(); len(reqs) != 2 || reqs[1] != "bytes=200000-" {
		t.Errorf("requests %q, want the second from byte 200000", reqs)
	}
}

func TestDownloadStall(t *testing.T) {
	content := pattern{size: 10_000}
	srv := newHTTPServer(t, content, nil)
	srv.setHandle(func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000")
		_, _ = w.Write(content.bytes()[:10])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // never more
	})
	cfg := fastConfig()
	cfg.Timeout = 50 * time.Millisecond
	cfg.MaxRetries = 1
	trustServer(&cfg, srv.Server)
	d := newDownloader(t, cfg)

	err := d.Download(context.Background(), srv.url(), dstIn(t), content.expect(t), nil)
	if got := steptest.ResultOf(err); got != swu.ResultConnectionLost || !errors.Is(err, ErrStalled) {
		t.Fatalf("result %d (%v), want 4 with ErrStalled", got, err)
	}
	// The first attempt makes progress (10 bytes), the second does not
	// and exhausts MaxRetries 1.
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestDownloadAlreadyVerified(t *testing.T) {
	content := pattern{size: 2000, seed: 5}
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	cfg := fastConfig()
	trustServer(&cfg, srv)
	d := newDownloader(t, cfg)
	dst := dstIn(t)
	writePart(t, dst, content.bytes())
	// A complete .part is verified and renamed without a request ...
	if err := d.Download(context.Background(), srv.URL, dst, content.expect(t), nil); err != nil {
		t.Fatal(err)
	}
	// ... and a verified dst is accepted as is.
	if err := d.Download(context.Background(), srv.URL, dst, content.expect(t), nil); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dst, content)
	if hits.Load() != 0 {
		t.Errorf("%d requests, want none", hits.Load())
	}
}

func TestDownloadExpect(t *testing.T) {
	d := newDownloader(t, fastConfig())
	sum := sha256.Sum256(nil)
	tests := []struct {
		name string
		want Expect
		res  swu.Result
	}{
		{"no hashes", Expect{Length: 1}, swu.ResultValidation},
		{"only unsupported hashes", Expect{Length: 1, Hashes: map[string][]byte{"md5": make([]byte, 16)}}, swu.ResultValidation},
		{"truncated digest", Expect{Length: 1, Hashes: map[string][]byte{"sha256": sum[:10]}}, swu.ResultValidation},
		{"negative length", Expect{Length: -1, Hashes: map[string][]byte{"sha256": sum[:]}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Download(context.Background(), "https://127.0.0.1:1/x", dstIn(t), tt.want, nil)
			if got := steptest.ResultOf(err); got != tt.res {
				t.Fatalf("result %d (%v), want %d", got, err, tt.res)
			}
		})
	}
}

func TestDownloadBothHashes(t *testing.T) {
	content := pattern{size: 70_000, seed: 6}
	srv := newHTTPServer(t, content, nil)
	cfg := fastConfig()
	trustServer(&cfg, srv.Server)
	d := newDownloader(t, cfg)
	want := content.expect(t)
	want.Hashes["sha512"] = make([]byte, 64) // right size, wrong value
	want.Hashes["blake2b"] = []byte{1}       // ignored
	err := d.Download(context.Background(), srv.url(), dstIn(t), want, nil)
	if got := steptest.ResultOf(err); got != swu.ResultValidation || !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("result %d (%v), want 5 hash mismatch: every supported hash must match", got, err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"client and TLS config", Config{HTTPClient: &http.Client{}, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}},
		{"block size not a power of two", Config{CoAPBlockSize: 1000}},
		{"block size too large", Config{CoAPBlockSize: 2048}},
		{"negative timeout", Config{Timeout: -time.Second}},
		{"backoff max below min", Config{BackoffMin: time.Minute, BackoffMax: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	d, err := New(Config{})
	if err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	d.Close()
}

func TestBackoffBounds(t *testing.T) {
	d := newDownloader(t, Config{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			if got := d.backoff(n); got < ceiling/2 || got > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, got, ceiling/2, ceiling)
			}
		}
	}
}
