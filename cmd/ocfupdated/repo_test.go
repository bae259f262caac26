package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/sample"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// testRepo is a signed TUF repository on disk with packages for one model.
type testRepo struct {
	dir  string
	root string // path of root.json, for --trust
}

// newRepo creates a repository with a package per version for model.
func newRepo(t *testing.T, model string, versions ...string) *testRepo {
	t.Helper()
	r := &testRepo{dir: filepath.Join(t.TempDir(), "repo")}
	if err := tufrepo.Init(r.dir, tufrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		r.add(t, model, v, 4<<10)
	}
	r.publish(t)
	root, err := tufrepo.TrustedRoot(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	r.root = filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(r.root, root, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// add stages a slots package of about size bytes for model/version.
func (r *testRepo) add(t *testing.T, model, version string, size int64) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pkg-"+version+".tar.gz")
	writePackageSize(t, f, model, version, size)
	if _, err := tufrepo.AddTarget(r.dir, f, model, version, tufrepo.AddOptions{}); err != nil {
		t.Fatal(err)
	}
}

// writePackage writes a small slots package for model/version to f.
func writePackage(t *testing.T, f, model, version string) {
	writePackageSize(t, f, model, version, 4<<10)
}

func writePackageSize(t *testing.T, f, model, version string, size int64) {
	t.Helper()
	if err := sample.WritePackage(f, model, version, size); err != nil {
		t.Fatal(err)
	}
}

func (r *testRepo) publish(t *testing.T) {
	t.Helper()
	if _, err := tufrepo.Publish(r.dir, tufrepo.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

// serveHTTPS serves the repository over TLS; wrap may interpose on the
// handler. It returns the purl and a PEM file of the server's certificate
// for --ca.
func (r *testRepo) serveHTTPS(t testing.TB, wrap func(http.Handler) http.Handler) (purl, ca string) {
	t.Helper()
	var h http.Handler = tufrepo.NewHandler(r.dir)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca = filepath.Join(t.TempDir(), "ca.pem")
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, ca
}

// serveCoAP serves the repository over plain CoAP; the purl needs
// --allow-insecure on the device.
func (r *testRepo) serveCoAP(t testing.TB) string {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addr := conn.LocalAddr().String()
	go func() { done <- tufrepo.ServeCoAP(ctx, conn, r.dir, tufrepo.ServeOptions{}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("coap repository server did not stop")
		}
	})
	return "coap://" + addr
}
