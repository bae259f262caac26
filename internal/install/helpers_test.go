package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// Re-executed by a crash test: run only the helper, no leak check
		// (the parent kills this process).
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// entry is one member of a test archive.
type entry struct {
	name     string
	typ      byte // default tar.TypeReg
	body     string
	link     string
	mode     int64 // default 0o644 (0o755 for dirs)
	declared int64 // header size without writing a body (tar bombs)
}

// buildTar returns a tar archive of entries, gzip-compressed if gz.
func buildTar(t testing.TB, entries []entry, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.typ == tar.TypeXGlobalHeader {
			h := &tar.Header{Typeflag: e.typ, Name: e.name, PAXRecords: map[string]string{"comment": e.body}}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.declared > 0 {
			// A header promising far more than follows: the archive is
			// cut right after it, as an attacker would.
			h.Size = e.declared
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			return maybeGzip(t, buf.Bytes(), gz)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return maybeGzip(t, buf.Bytes(), gz)
}

func maybeGzip(t testing.TB, b []byte, gz bool) []byte {
	if !gz {
		return b
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func manifestEntry(version string) entry {
	return entry{name: ManifestName, body: fmt.Sprintf(`{"version": %q, "model": "thermo", "exec": "bin/app"}`, version)}
}

// goodEntries is a valid package of version.
func goodEntries(version string) []entry {
	return []entry{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/app", body: "#!/bin/sh\necho " + version + "\n", mode: 0o755},
		{name: "etc/version", body: version},
		{name: "etc/current-version", typ: tar.TypeSymlink, link: "version"},
		{name: "lib/app.so.1", body: strings.Repeat("x", 1000)},
		{name: "lib/app.so", typ: tar.TypeSymlink, link: "app.so.1"},
		{name: "lib/app-hard.so", typ: tar.TypeLink, link: "lib/app.so.1"},
		manifestEntry(version),
	}
}

// writePkg stores an archive in dir and returns its path and a target.
func writePkg(t testing.TB, dir, version string, b []byte) (string, step.Target) {
	t.Helper()
	p := filepath.Join(dir, "pkg-"+version+"-"+fmt.Sprint(time.Now().UnixNano())+".tar.gz")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, step.Target{Version: version, Name: "thermo/" + version + ".tar.gz", Length: int64(len(b))}
}

func goodPkg(t testing.TB, dir, version string) (string, step.Target) {
	return writePkg(t, dir, version, buildTar(t, goodEntries(version), true))
}

// resultOfErr extracts the swupdateresult of a step error (0: not one).
func resultOfErr(t testing.TB, err error) (swu.Result, string) {
	t.Helper()
	var se *step.Error
	if !errors.As(err, &se) {
		return 0, ""
	}
	return se.Result, se.Detail
}

func wantStepError(t testing.TB, err error, res swu.Result, details ...string) {
	t.Helper()
	got, detail := resultOfErr(t, err)
	if got != res {
		t.Fatalf("error %v: result %d, want %d", err, got, res)
	}
	for _, d := range details {
		if !strings.Contains(detail, d) {
			t.Errorf("detail %q does not contain %q", detail, d)
		}
	}
}

func readLink(t testing.TB, dir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, currentName))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func mustStatus(t testing.TB, in Installer) Status {
	t.Helper()
	st, err := in.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// installConfirmed installs and confirms version.
func installConfirmed(t testing.TB, s Installer, pkgDir, version string) {
	t.Helper()
	pkg, tg := goodPkg(t, pkgDir, version)
	if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatalf("install %s: %v", version, err)
	}
	if err := s.Confirm(context.Background(), tg); err != nil {
		t.Fatalf("confirm %s: %v", version, err)
	}
}

func step0(version string) step.Target { return step.Target{Version: version} }

// sameOutcome: a repeated Confirm reports what the first one did.
func sameOutcome(t testing.TB, got, want error) {
	t.Helper()
	gr, gd := resultOfErr(t, got)
	wr, wd := resultOfErr(t, want)
	if (got == nil) != (want == nil) || gr != wr || gd != wd {
		t.Fatalf("repeated Confirm = %v, first %v", got, want)
	}
}
