package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// parseServing reads the "serving SCHEME://HOST:PORT" lines of serve from
// sc, n of them, and returns the URLs by scheme.
func parseServing(t *testing.T, sc *bufio.Scanner, n int, stderr func() string) map[string]string {
	t.Helper()
	urls := map[string]string{}
	for range n {
		if !sc.Scan() {
			t.Fatalf("serve printed %d of %d lines; stderr %q", len(urls), n, stderr())
		}
		rest, ok := strings.CutPrefix(sc.Text(), "serving ")
		u, err := url.Parse(rest)
		if !ok || err != nil || u.Host == "" || u.Path != "" || u.Port() == "0" || u.Port() == "" {
			t.Fatalf("serve printed %q, want \"serving SCHEME://HOST:PORT\"", sc.Text())
		}
		if !strings.HasPrefix(u.Host, "127.0.0.1:") {
			t.Errorf("%s listens on %s, not on the loopback address asked for", u.Scheme, u.Host)
		}
		urls[u.Scheme] = rest
	}
	return urls
}

// serveInProcess runs "repo serve" with args in process until the test
// ends, then cancels it (as SIGTERM does) and expects exit 0.
func serveInProcess(t *testing.T, n int, args ...string) (urls map[string]string, stderr *daemontest.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr = &daemontest.Buffer{}
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"repo", "serve"}, args...), pw, stderr)
		_ = pw.Close()
		done <- code
	}()
	drained := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d after cancel, want 0; stderr %q", code, stderr.String())
		}
		<-drained
	})
	sc := bufio.NewScanner(pr)
	defer func() {
		// Whatever else serve prints must not block it.
		go func() { _, _ = io.Copy(io.Discard, pr); close(drained) }()
	}()
	return parseServing(t, sc, n, stderr.String), stderr
}

// certPool trusts the certificate in the PEM file at p.
func certPool(t *testing.T, p string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tufrepotest.ReadFile(t, p)) {
		t.Fatalf("no certificate in %s", p)
	}
	return pool
}

func httpsClient(t *testing.T, pool *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// httpsGet fetches u with optional Range and returns status, ETag and body.
func httpsGet(t *testing.T, c *http.Client, u, rng string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), body
}

// coapOptions are the options of a go-coap test client; its blockwise is
// off because coapGet drives Block2 itself, as the device's fetcher does.
func coapOptions(t *testing.T) []udp.Option {
	p := coaprun.New(time.Second)
	t.Cleanup(p.Stop)
	return []udp.Option{
		options.WithBlockwise(false, blockwise.SZX1024, time.Minute),
		options.WithErrors(func(error) {}),
		options.WithPeriodicRunner(p.Func),
	}
}

func closeCoAP(t *testing.T, cc *udpClient.Conn) {
	t.Cleanup(func() { _ = cc.Close(); <-cc.Done() })
}

// coapGet fetches path block by block (size szx) and checks that every
// block carries the same ETag and the full size in Size2.
func coapGet(t *testing.T, cc *udpClient.Conn, path string, szx blockwise.SZX) []byte {
	t.Helper()
	var body, etag []byte
	for num := int64(0); ; num++ {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		req, err := cc.NewGetRequest(ctx, path)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		v, err := blockwise.EncodeBlockOption(szx, num, false)
		if err != nil {
			t.Fatal(err)
		}
		req.SetOptionUint32(message.Block2, v)
		resp, err := cc.Do(req)
		cc.ReleaseMessage(req)
		cancel()
		if err != nil {
			t.Fatalf("GET %s block %d: %v", path, num, err)
		}
		if resp.Code() != codes.Content {
			t.Fatalf("GET %s block %d: %v", path, num, resp.Code())
		}
		tag, _ := resp.ETag()
		if len(tag) == 0 || (etag != nil && !bytes.Equal(tag, etag)) {
			t.Fatalf("block %d: ETag %x, first %x", num, tag, etag)
		}
		etag = bytes.Clone(tag)
		size2, err := resp.GetOptionUint32(message.Size2)
		if err != nil {
			t.Fatalf("block %d: no Size2", num)
		}
		blk, err := resp.GetOptionUint32(message.Block2)
		if err != nil {
			t.Fatalf("block %d: no Block2", num)
		}
		_, gotNum, more, err := blockwise.DecodeBlockOption(blk)
		if err != nil || gotNum != num {
			t.Fatalf("block %d: Block2 num %d, %v", num, gotNum, err)
		}
		payload, err := resp.ReadBody()
		if err != nil {
			t.Fatal(err)
		}
		cc.ReleaseMessage(resp)
		body = append(body, payload...)
		if !more {
			if int(size2) != len(body) {
				t.Fatalf("Size2 %d, received %d bytes", size2, len(body))
			}
			return body
		}
	}
}

// packagePath is where repo serves the package of target p.
func packagePath(t *testing.T, dir, p string) string {
	t.Helper()
	targets, err := tufrepo.ListTargets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if tg.Path == p {
			return "/targets/" + tg.Model + "/" + tg.Version + "/" + tg.Hashes["sha256"] + "." + filepath.Base(p)
		}
	}
	t.Fatalf("no target %s", p)
	return ""
}

func TestServeGeneratedCertificate(t *testing.T) {
	repo := newTestRepo(t)
	urls, stderr := serveInProcess(t, 3, repo.dir, "--https", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0")
	if len(urls) != 3 || urls["https"] == "" || urls["coap"] == "" || urls["coaps"] == "" {
		t.Fatalf("serving %v", urls)
	}
	certLine, ok := strings.CutPrefix(strings.SplitN(stderr.String(), "\n", 2)[0], "tls certificate: ")
	if !ok || certLine != filepath.Join(repo.dir, "tls", "cert.pem") {
		t.Fatalf("stderr %q, want \"tls certificate: DIR/tls/cert.pem\" first", stderr.String())
	}
	pool := certPool(t, certLine)
	timestamp := tufrepotest.ReadFile(t, filepath.Join(repo.dir, "repository", "metadata", "timestamp.json"))
	pkgPath := packagePath(t, repo.dir, repo.target)

	t.Run("https", func(t *testing.T) {
		c := httpsClient(t, pool)
		status, etag, body := httpsGet(t, c, urls["https"]+"/metadata/timestamp.json", "")
		if status != http.StatusOK || etag == "" || !bytes.Equal(body, timestamp) {
			t.Fatalf("timestamp.json: %d, ETag %q, %d bytes", status, etag, len(body))
		}
		status, etag2, body := httpsGet(t, c, urls["https"]+pkgPath, "bytes=1000-")
		if status != http.StatusPartialContent || !bytes.Equal(body, repo.data[1000:]) || etag2 == "" {
			t.Fatalf("package from byte 1000: %d, %d bytes", status, len(body))
		}
	})
	t.Run("coap", func(t *testing.T) {
		cc, err := udp.Dial(strings.TrimPrefix(urls["coap"], "coap://"), coapOptions(t)...)
		if err != nil {
			t.Fatal(err)
		}
		closeCoAP(t, cc)
		if got := coapGet(t, cc, "/metadata/timestamp.json", blockwise.SZX1024); !bytes.Equal(got, timestamp) {
			t.Fatal("timestamp.json over CoAP differs")
		}
		if got := coapGet(t, cc, pkgPath, blockwise.SZX512); !bytes.Equal(got, repo.data) {
			t.Fatal("package over CoAP differs")
		}
	})
	t.Run("coaps", func(t *testing.T) {
		cc, err := dtls.Dial(strings.TrimPrefix(urls["coaps"], "coaps://"), dtls.NewDTLSClientOptions(
			piondtls.WithRootCAs(pool), piondtls.WithServerName("localhost")), coapOptions(t)...)
		if err != nil {
			t.Fatal(err)
		}
		closeCoAP(t, cc)
		if got := coapGet(t, cc, "/metadata/timestamp.json", blockwise.SZX1024); !bytes.Equal(got, timestamp) {
			t.Fatal("timestamp.json over CoAPs differs")
		}
	})
	t.Run("coaps refuses an untrusted server", func(t *testing.T) {
		other := certPool(t, mustGenerateCert(t))
		cc, err := dtls.Dial(strings.TrimPrefix(urls["coaps"], "coaps://"), dtls.NewDTLSClientOptions(
			piondtls.WithRootCAs(other), piondtls.WithServerName("localhost")), coapOptions(t)...)
		if err != nil {
			return // refused at once
		}
		closeCoAP(t, cc)
		// pion shakes hands on first use.
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if resp, err := cc.Get(ctx, "/metadata/timestamp.json"); err == nil {
			t.Fatalf("GET over DTLS with an untrusted server certificate: %v", resp.Code())
		}
	})
}

// mustGenerateCert makes an unrelated self-signed pair and returns its
// certificate file.
func mustGenerateCert(t *testing.T) string {
	t.Helper()
	cert, _, err := tufrepo.GenerateSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestServeUpdaterEndToEnd is what a device does: go-tuf's updater, trusting
// the root "repo root" printed, refreshes over the HTTPS that "repo serve"
// offers (with a given certificate) and downloads the package.
func TestServeUpdaterEndToEnd(t *testing.T) {
	repo := newTestRepo(t)
	certPath, keyPath, err := tufrepo.GenerateSelfSigned(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	urls, stderr := serveInProcess(t, 1, repo.dir, "--https", "127.0.0.1:0", "--tls-cert", certPath, "--tls-key", keyPath)
	if strings.Contains(stderr.String(), "tls certificate:") {
		t.Errorf("serve generated a certificate though one was given: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(repo.dir, "tls")); err == nil {
		t.Error("serve wrote DIR/tls though a certificate was given")
	}
	root := mustRun(t, "repo", "root", repo.dir)

	cfg, err := config.New(urls["https"]+"/metadata", []byte(root))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = urls["https"] + "/targets"
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	if err := cfg.SetDefaultFetcherHTTPClient(httpsClient(t, certPool(t, certPath))); err != nil {
		t.Fatal(err)
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	info, err := up.GetTargetInfo(repo.target)
	if err != nil {
		t.Fatal(err)
	}
	file, data, err := up.DownloadTarget(info, filepath.Join(t.TempDir(), "pkg"), "")
	if err != nil || !bytes.Equal(data, repo.data) {
		t.Fatalf("download %s: %v (%d bytes)", file, err, len(data))
	}
}

func TestServeBindFailureReleasesListeners(t *testing.T) {
	repo := newTestRepo(t)
	urls, _ := serveInProcess(t, 1, repo.dir, "--https", "", "--coap", "127.0.0.1:0")
	taken := strings.TrimPrefix(urls["coap"], "coap://")
	// A TCP port that was free a moment ago, for the HTTPS listener.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsAddr := ln.Addr().String()
	_ = ln.Close()

	// This serve binds HTTPS, then fails on the taken UDP port: exit 1,
	// no serving line, and the HTTPS port is free again.
	r := runCLI(t, "repo", "serve", repo.dir, "--https", httpsAddr, "--coap", taken)
	if r.code != exitFailure || !strings.Contains(r.stderr, "coap: listen udp "+taken) || r.stdout != "" {
		t.Fatalf("serve on a taken port: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	ln, err = net.Listen("tcp", httpsAddr)
	if err != nil {
		t.Fatalf("HTTPS port still held after the failed serve: %v", err)
	}
	_ = ln.Close()
}
