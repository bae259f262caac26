package client_test

import (
	"bytes"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/sample"
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
	root, err := sample.Repository(r.dir, t.TempDir(), model, size, versions...)
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
