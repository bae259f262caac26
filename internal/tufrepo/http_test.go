package tufrepo

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// packagePath is the sha256-named file of the fixture's lamp-1 1.1.0
// package (5000 bytes), as a URL path below the repository.
func packagePath(t *testing.T, f *fixture) (string, []byte) {
	t.Helper()
	list, err := ListTargets(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range list {
		if tg.Model == "lamp-1" && tg.Version == "1.1.0" {
			return "/targets/lamp-1/1.1.0/" + tg.Hashes["sha256"] + ".firmware.bin", f.pkgs[1].data
		}
	}
	t.Fatal("fixture package missing")
	return "", nil
}

func TestHTTPRangeAndETag(t *testing.T) {
	f := newFixture(t, InitOptions{})
	p, data := packagePath(t, f)
	srv := httptest.NewServer(NewHandler(f.dir))
	defer srv.Close()

	get := func(t *testing.T, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}

	res, body := get(t, nil)
	etag := res.Header.Get("ETag")
	if res.StatusCode != http.StatusOK || !equalBytes(body, data) {
		t.Fatalf("full GET: %s, %d bytes", res.Status, len(body))
	}
	if !strings.HasPrefix(etag, `"`) || len(etag) != 18 {
		t.Fatalf("ETag %q, want a strong 8-byte tag", etag)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}

	tests := []struct {
		name       string
		hdr        map[string]string
		wantStatus int
		wantBody   []byte
	}{
		{"range", map[string]string{"Range": "bytes=100-199"}, http.StatusPartialContent, data[100:200]},
		{"open range resumes", map[string]string{"Range": "bytes=4000-"}, http.StatusPartialContent, data[4000:]},
		{"suffix range", map[string]string{"Range": "bytes=-10"}, http.StatusPartialContent, data[len(data)-10:]},
		{"if-range matching", map[string]string{"Range": "bytes=10-19", "If-Range": etag}, http.StatusPartialContent, data[10:20]},
		{"if-range stale: whole file", map[string]string{"Range": "bytes=10-19", "If-Range": `"0000000000000000"`}, http.StatusOK, data},
		{"if-none-match", map[string]string{"If-None-Match": etag}, http.StatusNotModified, nil},
		{"unsatisfiable", map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(data)+5)}, http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, tt.hdr)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %s, want %d", res.Status, tt.wantStatus)
			}
			if tt.wantBody != nil && !equalBytes(body, tt.wantBody) {
				t.Fatalf("body %d bytes, want %d", len(body), len(tt.wantBody))
			}
			if tt.wantStatus != http.StatusRequestedRangeNotSatisfiable && res.Header.Get("ETag") != etag {
				t.Fatalf("ETag %q, want %q", res.Header.Get("ETag"), etag)
			}
		})
	}
}

func TestHTTPETagChangesWithContent(t *testing.T) {
	f := newFixture(t, InitOptions{})
	srv := httptest.NewServer(NewHandler(f.dir))
	defer srv.Close()
	etagOf := func() string {
		res, err := srv.Client().Get(srv.URL + "/metadata/timestamp.json")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("timestamp.json Cache-Control %q, want no-cache", cc)
		}
		return res.Header.Get("ETag")
	}
	before := etagOf()
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := etagOf(); after == before {
		t.Fatalf("timestamp.json ETag %s unchanged after Publish", after)
	}
}

// rawGET sends path exactly as given, bypassing the client's URL cleaning.
func rawGET(t *testing.T, addr, method, path string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method, path); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestHTTPRefusesWhatIsNotServed(t *testing.T) {
	f := newFixture(t, InitOptions{})
	// A symlink inside the repository that leads to the keys.
	if err := os.Symlink(filepath.Join(f.dir, keysDir), filepath.Join(f.dir, repositoryDir, "k")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.dir, settingsFile), filepath.Join(f.dir, repositoryDir, "settings.json")); err != nil {
		t.Fatal(err)
	}
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := keyFileName(RoleRoot, root.Signed.Roles[RoleRoot].KeyIDs[0])
	srv := httptest.NewServer(NewHandler(f.dir))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name, method, path string
		want               int
	}{
		{"served file", "GET", "/metadata/1.root.json", 200},
		{"head", "HEAD", "/metadata/1.root.json", 200},
		{"post", "POST", "/metadata/1.root.json", 405},
		{"root listing", "GET", "/", 404},
		{"directory listing", "GET", "/metadata/", 404},
		{"directory without slash", "GET", "/targets", 404},
		{"dot-dot to keys", "GET", "/../keys/" + keyFile, 404},
		{"deep dot-dot", "GET", "/metadata/../../keys/" + keyFile, 404},
		{"encoded dot-dot", "GET", "/%2e%2e/keys/" + keyFile, 404},
		{"encoded slash", "GET", "/metadata%2f..%2f..%2fkeys%2f" + keyFile, 404},
		{"backslash", "GET", "/metadata\\..\\..\\repo.json", 404},
		{"dot file", "GET", "/metadata/.timestamp.json.tmp-1", 404},
		{"lock file via dot-dot", "GET", "/../.lock", 404},
		{"symlink out of the repository", "GET", "/k/" + keyFile, 404},
		{"symlink to a file outside", "GET", "/settings.json", 404},
		{"empty segment", "GET", "/metadata//root.json", 404},
		{"missing", "GET", "/metadata/99.root.json", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawGET(t, addr, tt.method, tt.path); got != tt.want {
				t.Fatalf("%s %s: %d, want %d", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestServeHTTPSWithSelfSigned(t *testing.T) {
	f := newFixture(t, InitOptions{})
	certPath, keyPath, err := GenerateSelfSigned(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("TLS key %v %v, want mode 0600", fi, err)
	}
	// Reused while valid: devices keep trusting the same certificate.
	certPEM := tufrepotest.ReadFile(t, certPath)
	if c2, _, err := GenerateSelfSigned(f.dir); err != nil || !equalBytes(tufrepotest.ReadFile(t, c2), certPEM) {
		t.Fatalf("second GenerateSelfSigned replaced the pair (%v)", err)
	}
	// A new host is not covered: a new pair.
	if _, _, err := GenerateSelfSigned(f.dir, "repo.example"); err != nil || equalBytes(tufrepotest.ReadFile(t, certPath), certPEM) {
		t.Fatalf("GenerateSelfSigned with a new host kept the old pair (%v)", err)
	}
	cfg, err := LoadTLSConfig(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeHTTPS(ctx, ln, f.dir, cfg, ServeOptions{}) }()

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tufrepotest.ReadFile(t, certPath)) {
		t.Fatal("cert.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	base := "https://" + ln.Addr().String()
	up := newUpdaterFor(t, base, client, f.root)
	tg := refreshed(t, up)
	sel, found, err := SelectTarget(tg, "lamp-1", Installed{})
	if err != nil || !found {
		t.Fatalf("select: %v %v", found, err)
	}
	if _, data, err := up.DownloadTarget(sel.File, "", ""); err != nil || !equalBytes(data, f.pkgs[1].data) {
		t.Fatalf("download over ServeHTTPS: %v", err)
	}
	// Keys are not reachable over the real server either.
	res, err := client.Get(base + "/../keys/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("keys: %s", res.Status)
	}
	tr.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeHTTPS after cancel: %v", err)
	}
}

func TestServeHTTPSNeedsCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = ServeHTTPS(context.Background(), ln, t.TempDir(), &tls.Config{}, ServeOptions{})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("ServeHTTPS without a certificate: %v, want ErrInvalid", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener left open")
	}
}
