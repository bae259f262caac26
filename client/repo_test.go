package client_test

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// testRepo is a signed TUF repository with a package per version of one
// model, served over HTTPS.
type testRepo struct {
	dir  string
	root string // root.json for --trust
	purl string
	ca   string // PEM of the server certificate for --ca
}

func newRepo(t *testing.T, model string, size int64, versions ...string) *testRepo {
	t.Helper()
	r := &testRepo{dir: filepath.Join(t.TempDir(), "repo")}
	if err := tufrepo.Init(r.dir, tufrepo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		f := filepath.Join(t.TempDir(), "pkg-"+v+".tar.gz")
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		err = install.WritePackage(out, install.Manifest{Version: v, Model: model},
			install.PackageFile{Name: "firmware.bin", Mode: 0o644, Size: size, Data: &pattern{n: size}})
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tufrepo.AddTarget(r.dir, f, model, v, tufrepo.AddOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tufrepo.Publish(r.dir, tufrepo.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	root, err := tufrepo.TrustedRoot(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	r.root = filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(r.root, root, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(tufrepo.NewHandler(r.dir))
	t.Cleanup(srv.Close)
	r.purl = srv.URL
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}); err != nil {
		t.Fatal(err)
	}
	r.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(r.ca, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// deviceArgs are the ocfupdated flags for a device of model at version
// that trusts r.
func (r *testRepo) deviceArgs(model, version string) []string {
	return []string{"--model", model, "--version", version, "--trust", r.root, "--ca", r.ca}
}

// pattern yields n bytes that do not compress, without holding them.
type pattern struct {
	n, off int64
	x      uint64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		p.x = p.x*6364136223846793005 + 1442695040888963407
		b[i] = byte(p.x >> 56)
	}
	p.off += int64(len(b))
	return len(b), nil
}
