package fetch

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pattern is deterministic package content of any size that needs no
// memory: byte i is a hash-like function of i.
type pattern struct {
	size int64
	seed byte
}

func (p pattern) at(i int64) byte {
	x := uint64(i) * 0x9E3779B97F4A7C15
	return byte(x>>56) ^ byte(i>>10) ^ p.seed
}

func (p pattern) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	for i := range n {
		b[i] = p.at(off + int64(i))
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns a fresh ReadSeeker over the content.
func (p pattern) reader() io.ReadSeeker { return io.NewSectionReader(p, 0, p.size) }

// bytes materialises the content (small sizes only).
func (p pattern) bytes() []byte {
	b := make([]byte, p.size)
	_, _ = p.ReadAt(b, 0)
	return b
}

// expect returns the Expect for the content.
func (p pattern) expect(t testing.TB) Expect {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, p.reader()); err != nil {
		t.Fatal(err)
	}
	return Expect{Length: p.size, Hashes: map[string][]byte{"sha256": h.Sum(nil)}}
}

// fastConfig is a Config with small bounds so failures are quick.
func fastConfig() Config {
	return Config{
		Timeout:    2 * time.Second,
		MaxRetries: 3,
		BackoffMin: time.Millisecond,
		BackoffMax: 5 * time.Millisecond,
		FreeSpace:  func(string) (int64, error) { return 1 << 40, nil },
	}
}

// trustServer sets cfg to trust the httptest server's certificate.
func trustServer(cfg *Config, srv *httptest.Server) {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func newDownloader(t testing.TB, cfg Config) *Downloader {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func exists(t testing.TB, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkFile asserts that path holds exactly the content.
func checkFile(t testing.TB, path string, p pattern) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, want := sha256.New(), sha256.New()
	n, err := io.Copy(got, f)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(want, p.reader())
	if n != p.size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("%s: %d bytes, content differs from the expected %d bytes", path, n, p.size)
	}
}

// writePart creates dst.part holding content bytes [0, n).
func writePart(t testing.TB, dst string, content []byte) {
	t.Helper()
	if err := os.WriteFile(dst+PartSuffix, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

func dstIn(t testing.TB) string {
	return filepath.Join(t.TempDir(), "pkg.bin")
}
