package tufrepo

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pkg is a package file written for a test.
type pkg struct {
	model, version string
	data           []byte
}

// fixture is the standard repository of the tests: two versions of model
// "lamp-1", one of "plug-2", published.
type fixture struct {
	dir  string
	pkgs []pkg
	root []byte // root.json as first published (version 1)
}

func newFixture(t *testing.T, opts InitOptions) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Init(dir, opts); err != nil {
		t.Fatalf("Init: %v", err)
	}
	root, err := TrustedRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, root: root}
	for _, p := range []struct {
		model, version string
		size           int
	}{{"lamp-1", "1.0.0", 3000}, {"lamp-1", "1.1.0", 5000}, {"plug-2", "0.9.0", 700}} {
		file, data := tufrepotest.PackageFile(t, "firmware.bin", p.size)
		if _, err := AddTarget(dir, file, p.model, p.version, AddOptions{}); err != nil {
			t.Fatalf("AddTarget %s %s: %v", p.model, p.version, err)
		}
		f.pkgs = append(f.pkgs, pkg{p.model, p.version, data})
	}
	if _, err := Publish(dir, PublishOptions{}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return f
}

// newClient starts an HTTPS server for dir and returns an updater that
// trusts root, using go-tuf's default fetcher with the test server's client.
func newClient(t *testing.T, dir string, root []byte) *updater.Updater {
	t.Helper()
	srv := httptest.NewTLSServer(NewHandler(dir))
	t.Cleanup(srv.Close)
	return newUpdaterFor(t, srv.URL, srv.Client(), root)
}

func newUpdaterFor(t *testing.T, base string, client *http.Client, root []byte) *updater.Updater {
	t.Helper()
	return newUpdaterIn(t, base, client, root, t.TempDir())
}

// newUpdaterIn is newUpdaterFor with the updater's metadata cache in cache.
func newUpdaterIn(t *testing.T, base string, client *http.Client, root []byte, cache string) *updater.Updater {
	t.Helper()
	cfg, err := config.New(base+"/metadata", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = base + "/targets"
	cfg.LocalMetadataDir = cache
	cfg.LocalTargetsDir = t.TempDir()
	if err := cfg.SetDefaultFetcherHTTPClient(client); err != nil {
		t.Fatal(err)
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatalf("updater.New: %v", err)
	}
	return up
}

// trustedTargets is the targets metadata an updater verified.
func trustedTargets(t *testing.T, up *updater.Updater) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	tg := up.GetTrustedMetadataSet().Targets[metadata.TARGETS]
	if tg == nil {
		t.Fatal("updater has no trusted targets")
	}
	return tg
}

func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }
