package tufclient

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The standard device: a lamp running 1.0.0, which is counter 1 in the
// standard repository.
const (
	model  = "lamp-1"
	newest = "1.1.0"
)

var lamp = step.CheckRequest{Model: model, InstalledVersion: "1.0.0", InstalledCounter: 1}

// repo is a TUF repository built with tufrepo in a temp dir.
type repo struct {
	dir  string
	root []byte            // root.json version 1, what devices trust
	pkgs map[string][]byte // target path → package bytes
}

// newRepo makes the standard repository: lamp-1 1.0.0 (counter 1) and
// 1.1.0 (counter 2), plug-2 0.9.0, published.
func newRepo(t testing.TB) *repo {
	t.Helper()
	r := emptyRepo(t)
	r.add(t, "lamp-1", "1.0.0", 3000)
	r.add(t, "lamp-1", "1.1.0", 70_000) // several CoAP blocks and TCP writes
	r.add(t, "plug-2", "0.9.0", 700)
	r.publish(t, tufrepo.PublishOptions{})
	return r
}

// emptyRepo is an initialised repository without packages.
func emptyRepo(t testing.TB) *repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := tufrepo.Init(dir, tufrepo.InitOptions{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
	root, err := tufrepo.TrustedRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &repo{dir: dir, root: root, pkgs: map[string][]byte{}}
}

// add stages a package of n random bytes.
func (r *repo) add(t testing.TB, model, version string, n int) string {
	t.Helper()
	return r.addWith(t, model, version, n, tufrepo.AddOptions{})
}

// addWith stages a package of n random bytes with opts.
func (r *repo) addWith(t testing.TB, model, version string, n int, opts tufrepo.AddOptions) string {
	t.Helper()
	file, data := tufrepotest.PackageFile(t, "firmware.bin", n)
	tg, err := tufrepo.AddTarget(r.dir, file, model, version, opts)
	if err != nil {
		t.Fatalf("AddTarget %s %s: %v", model, version, err)
	}
	r.pkgs[tg.Path] = data
	return tg.Path
}

func (r *repo) publish(t testing.TB, opts tufrepo.PublishOptions) {
	t.Helper()
	if _, err := tufrepo.Publish(r.dir, opts); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// pkgPath is the target path of model's package at version.
func pkgPath(model, version string) string { return model + "/" + version + "/firmware.bin" }

// rewritePackage replaces the served bytes of target p in place. Both
// hash-named files are hard links to one inode, so both change.
func (r *repo) rewritePackage(t testing.TB, p string, change func([]byte) []byte) {
	t.Helper()
	data := change(append([]byte(nil), r.pkgs[p]...))
	sum := sha256.Sum256(r.pkgs[p])
	file := filepath.Join(r.dir, "repository", filepath.FromSlash(tufrepo.RemoteTargetPath(p, sum[:])))
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// forgeTargets publishes targets metadata signed by a key the root does not
// list, under snapshot and timestamp correctly signed with the repository's
// own keys: only the targets signature is wrong.
func (r *repo) forgeTargets(t testing.TB) {
	t.Helper()
	md := filepath.Join(r.dir, "repository", "metadata")
	ts, err := metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	sv := ts.Signed.Meta["snapshot.json"].Version
	snap, err := metadata.Snapshot().FromFile(filepath.Join(md, fmt.Sprintf("%d.snapshot.json", sv)))
	if err != nil {
		t.Fatal(err)
	}
	tv := snap.Signed.Meta["targets.json"].Version
	tg, err := metadata.Targets().FromFile(filepath.Join(md, fmt.Sprintf("%d.targets.json", tv)))
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := tufrepo.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tg.Signed.Version = tv + 1
	tb := signWith(t, tg, rogue)
	writeMeta(t, md, fmt.Sprintf("%d.targets.json", tv+1), tb)

	snap.Signed.Version = sv + 1
	snap.Signed.Meta["targets.json"] = metaFile(tv+1, tb)
	sb := signWith(t, snap, r.key(t, tufrepo.RoleSnapshot))
	writeMeta(t, md, fmt.Sprintf("%d.snapshot.json", sv+1), sb)

	ts.Signed.Version++
	ts.Signed.Meta["snapshot.json"] = metaFile(sv+1, sb)
	writeMeta(t, md, "timestamp.json", signWith(t, ts, r.key(t, tufrepo.RoleTimestamp)))
}

// alterCurrentSnapshot changes one character of the signature of the
// snapshot the timestamp names: same length, still JSON, but not the bytes
// the timestamp signed.
func (r *repo) alterCurrentSnapshot(t testing.TB) {
	t.Helper()
	md := filepath.Join(r.dir, "repository", "metadata")
	ts, err := metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(md, fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	loc := regexp.MustCompile(`"sig":\s*"`).FindIndex(data)
	if loc == nil {
		t.Fatalf("no signature in %s", p)
	}
	i := loc[1]
	if data[i] == '0' { // another hex digit
		data[i] = '1'
	} else {
		data[i] = '0'
	}
	writeMeta(t, md, filepath.Base(p), data)
}

// key loads the repository's only private key for role.
func (r *repo) key(t testing.TB, role string) *tufrepo.PrivateKey {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(r.dir, "keys", role+"-*.pem"))
	if err != nil || len(files) != 1 {
		t.Fatalf("keys of %s: %v %v", role, files, err)
	}
	k, err := tufrepo.ReadKeyFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signWith[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], k *tufrepo.PrivateKey) []byte {
	t.Helper()
	s, err := signature.LoadSigner(k.Key, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	m.ClearSignatures()
	if _, err := m.Sign(s); err != nil {
		t.Fatal(err)
	}
	b, err := m.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	mf := metadata.MetaFile(version)
	sum := sha256.Sum256(data)
	mf.Length = int64(len(data))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	return mf
}

func writeMeta(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the directories and regular files under src to dst,
// with their permissions (private keys must stay 0600).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// middleware wraps the repository handler to misbehave.
type middleware func(next http.Handler) http.Handler

// serveHTTPS serves the repository over HTTPS and returns its base URL.
func serveHTTPS(t testing.TB, r *repo, mw middleware) *httptest.Server {
	t.Helper()
	var h http.Handler = tufrepo.NewHandler(r.dir)
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted handlers are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// serveCoAP serves the repository over plain CoAP on loopback and returns
// its base URL.
func serveCoAP(t testing.TB, r *repo) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tufrepo.ServeCoAP(ctx, conn, r.dir, tufrepo.ServeOptions{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeCoAP: %v", err)
		}
	})
	return "coap://" + conn.LocalAddr().String()
}

// isTargetRequest reports whether a request is for a package file.
func isTargetRequest(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/targets/") }

// countTargets counts package requests.
func countTargets(n *atomic.Int64) middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isTargetRequest(r) {
				n.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// downloaderConfig has small bounds so failures are quick, trusts srv (may
// be nil) and allows coap:// for the CoAP tests.
func downloaderConfig(srv *httptest.Server) fetch.Config {
	cfg := fetch.Config{
		AllowInsecure: true,
		Timeout:       2 * time.Second,
		MaxRetries:    2,
		BackoffMin:    time.Millisecond,
		BackoffMax:    5 * time.Millisecond,
		FreeSpace:     func(string) (int64, error) { return 1 << 40, nil },
	}
	if srv != nil {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return cfg
}

func newDownloader(t testing.TB, cfg fetch.Config) *fetch.Downloader {
	t.Helper()
	d, err := fetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// newClient returns a Client trusting root with its directories in a temp
// dir.
func newClient(t testing.TB, root []byte, d *fetch.Downloader, edit func(*Config)) *Client {
	t.Helper()
	data := t.TempDir()
	cfg := Config{
		TrustedRoot: root,
		CacheDir:    filepath.Join(data, "tuf"),
		StagingDir:  filepath.Join(data, "downloads"),
		Downloader:  d,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// staged lists the final-named packages in the staging directory.
func staged(t testing.TB, c *Client) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.cfg.StagingDir, "*"+stagedSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func withPURL(req step.CheckRequest, purl string) step.CheckRequest {
	req.PURL = purl
	return req
}
