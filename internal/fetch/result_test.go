package fetch

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestResultForHTTPStatus(t *testing.T) {
	tests := map[int]swu.Result{
		200: swu.ResultSuccess, 206: swu.ResultSuccess,
		400: 400, 403: 403, 404: 404, 416: 416, 429: 429, 499: 499,
		500: 500, 503: 503, 599: 599,
		100: swu.ResultUnsupportedProt, 301: swu.ResultUnsupportedProt, 304: swu.ResultUnsupportedProt,
		0: swu.ResultUnsupportedProt, 600: swu.ResultUnsupportedProt, -1: swu.ResultUnsupportedProt,
	}
	for code, want := range tests {
		if got := ResultForHTTPStatus(code); got != want {
			t.Errorf("ResultForHTTPStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestResultForCoAPCode(t *testing.T) {
	tests := map[codes.Code]swu.Result{
		codes.Content:               swu.ResultSuccess,
		codes.Valid:                 swu.ResultSuccess,
		codes.BadRequest:            400,
		codes.Unauthorized:          401,
		codes.NotFound:              404,
		codes.RequestEntityTooLarge: 413,
		codes.TooManyRequests:       429,
		codes.InternalServerError:   500,
		codes.ServiceUnavailable:    503,
		codes.ProxyingNotSupported:  505,
		codes.Code(4<<5 | 31):       431,
		codes.Code(5<<5 | 31):       531,
		codes.GET:                   swu.ResultUnsupportedProt,
		codes.Empty:                 swu.ResultUnsupportedProt,
		codes.CSM:                   swu.ResultUnsupportedProt,
	}
	for code, want := range tests {
		if got := ResultForCoAPCode(code); got != want {
			t.Errorf("ResultForCoAPCode(%v) = %d, want %d", code, got, want)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw      string
		insecure bool
		want     swu.Result // ResultSuccess: accepted
		hostPort string
	}{
		{raw: "https://repo.example.com/tuf", want: swu.ResultSuccess, hostPort: "repo.example.com:443"},
		{raw: "HTTPS://repo.example.com:8443/tuf", want: swu.ResultSuccess, hostPort: "repo.example.com:8443"},
		{raw: "coaps://[fe80::1]/tuf", want: swu.ResultSuccess, hostPort: "[fe80::1]:5684"},
		{raw: "coap://10.0.0.1/tuf", insecure: true, want: swu.ResultSuccess, hostPort: "10.0.0.1:5683"},
		{raw: "http://10.0.0.1/tuf", insecure: true, want: swu.ResultSuccess, hostPort: "10.0.0.1:80"},
		{raw: "http://10.0.0.1/tuf", want: swu.ResultUnsupportedProt},
		{raw: "coap://10.0.0.1/tuf", want: swu.ResultUnsupportedProt},
		{raw: "ftp://10.0.0.1/tuf", insecure: true, want: swu.ResultUnsupportedProt},
		{raw: "coap+tcp://10.0.0.1/tuf", insecure: true, want: swu.ResultUnsupportedProt},
		{raw: "", want: swu.ResultInvalidURL},
		{raw: "   ", want: swu.ResultInvalidURL},
		{raw: "https://", want: swu.ResultInvalidURL},
		{raw: "https://:443/x", want: swu.ResultInvalidURL},
		{raw: "https://host:0/x", want: swu.ResultInvalidURL},
		{raw: "https://host:x/x", want: swu.ResultInvalidURL},
		{raw: "https://ho st/x", want: swu.ResultInvalidURL},
		{raw: "https://host/\x7f", want: swu.ResultInvalidURL},
		{raw: "host:8080/x", want: swu.ResultInvalidURL},
		{raw: "coaps://host/a%2Fb", want: swu.ResultInvalidURL},
		{raw: "https://host/a%2Fb", want: swu.ResultSuccess, hostPort: "host:443"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := ParseURL(tt.raw, tt.insecure)
			if got := steptest.ResultOf(err); got != tt.want {
				t.Fatalf("result %d (%v), want %d", got, err, tt.want)
			}
			if err == nil && hostPort(u) != tt.hostPort {
				t.Errorf("hostPort %q, want %q", hostPort(u), tt.hostPort)
			}
		})
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"https://a/b", "coaps://[::1]:5684/x?y=z", "http://u:p@h/", "%", "coap://h/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURL(raw, true)
		switch r := steptest.ResultOf(err); r {
		case swu.ResultSuccess:
			if u.Host == "" || !(u.Scheme == "https" || u.Scheme == "coaps" || u.Scheme == "http" || u.Scheme == "coap") {
				t.Fatalf("accepted %q as %#v", raw, u)
			}
		case swu.ResultInvalidURL, swu.ResultUnsupportedProt:
		default:
			t.Fatalf("ParseURL(%q): result %d", raw, r)
		}
	})
}

func TestNetworkFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want swu.Result
	}{
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, swu.ResultConnectionLost},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, swu.ResultConnectionLost},
		{"dns", &net.DNSError{Err: "no such host", IsNotFound: true}, swu.ResultConnectionLost},
		{"stalled", fmt.Errorf("x: %w", ErrStalled), swu.ResultConnectionLost},
		{"unknown authority", &url.Error{Op: "Get", Err: x509.UnknownAuthorityError{}}, swu.ResultValidation},
		{"hostname", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}, swu.ResultValidation},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, swu.ResultValidation},
		{"plain http", &url.Error{Op: "Get", Err: http.ErrSchemeMismatch}, swu.ResultUnsupportedProt},
		{"redirect policy", &url.Error{Op: "Get", Err: failure(swu.ResultUnsupportedProt, "x", nil)}, swu.ResultUnsupportedProt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := networkFailure(tt.err, "h:1")
			if se.Result != tt.want || se.Detail == "" || !errors.Is(se, tt.err) && tt.name != "redirect policy" {
				t.Fatalf("networkFailure = %d %q (%v), want %d wrapping the cause", se.Result, se.Detail, se.Err, tt.want)
			}
			if retryable(se) != (tt.want == swu.ResultConnectionLost) {
				t.Errorf("retryable = %v for result %d", retryable(se), se.Result)
			}
		})
	}
}

func TestDiskFailure(t *testing.T) {
	full := &os.PathError{Op: "write", Path: "p", Err: syscall.ENOSPC}
	if r := diskFailure(full, "p").Result; r != swu.ResultNoFlash {
		t.Errorf("ENOSPC: result %d, want 3", r)
	}
	quota := &os.PathError{Op: "write", Path: "p", Err: syscall.EDQUOT}
	if r := diskFailure(quota, "p").Result; r != swu.ResultNoFlash {
		t.Errorf("EDQUOT: result %d, want 3", r)
	}
	eio := &os.PathError{Op: "write", Path: "p", Err: syscall.EIO}
	if r := diskFailure(eio, "p").Result; r != swu.ResultUpdateFailed {
		t.Errorf("EIO: result %d, want 8", r)
	}
}

func TestTUFFetcher(t *testing.T) {
	content := pattern{size: 3000, seed: 13}
	coapSrv := newCoAPServer(t, content)
	httpSrv := newHTTPServer(t, content, nil)
	cfg := coapConfig()
	trustServer(&cfg, httpSrv.Server)
	d := newDownloader(t, cfg)
	f := d.TUFFetcher(context.Background())

	for _, u := range []string{coapSrv.url("coap"), httpSrv.url()} {
		got, err := f.DownloadFile(u, 3000, 0)
		if err != nil || len(got) != 3000 {
			t.Fatalf("DownloadFile(%s): %d bytes, %v", u, len(got), err)
		}
		_, err = f.DownloadFile(u, 2999, 0)
		var lenErr *metadata.ErrDownloadLengthMismatch
		if !errors.As(err, &lenErr) || steptest.ResultOf(err) != swu.ResultValidation || !errors.Is(err, &metadata.ErrDownload{}) {
			t.Fatalf("DownloadFile(%s) too long: %v, want ErrDownloadLengthMismatch with result 5", u, err)
		}
	}

	// 404 over both protocols is what ends go-tuf's search for a newer root.
	coapSrv.set(func(s *coapServer) {
		s.answer = func(_ int64, w mux.ResponseWriter) bool {
			_ = w.SetResponse(codes.NotFound, 0, nil)
			return true
		}
	})
	httpSrv.setHandle(func(_ int, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	for _, u := range []string{coapSrv.url("coap"), httpSrv.url()} {
		_, err := f.DownloadFile(u, 3000, 0)
		var httpErr *metadata.ErrDownloadHTTP
		if !errors.As(err, &httpErr) || httpErr.StatusCode != 404 || steptest.ResultOf(err) != 404 {
			t.Fatalf("DownloadFile(%s) on 404: %v, want ErrDownloadHTTP 404 with result 404", u, err)
		}
	}

	// Other failures pass through with their result.
	_, err := f.DownloadFile("ftp://x/y", 10, 0)
	if steptest.ResultOf(err) != swu.ResultUnsupportedProt {
		t.Fatalf("ftp: %v", err)
	}
}
