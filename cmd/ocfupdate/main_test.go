package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// cliResult is what one in-process run of the command produced.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs the command line in process with captured output.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return cliResult{out.String(), errb.String(), code}
}

// mustRun runs args and fails the test unless they succeed silently on
// stderr; it returns stdout.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("ocfupdate %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// testRepo is a repository made through the CLI: model lamp-1 at 1.0.0
// (3000 bytes, more than two CoAP blocks), published.
type testRepo struct {
	dir    string
	target string // TUF target path of the package
	data   []byte
}

func newTestRepo(t *testing.T) testRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	mustRun(t, "repo", "init", dir)
	file, data := tufrepotest.PackageFile(t, "fw.bin", 3000)
	mustRun(t, "repo", "add", dir, file, "--model", "lamp-1", "--version", "1.0.0")
	mustRun(t, "repo", "publish", dir)
	return testRepo{dir: dir, target: "lamp-1/1.0.0/fw.bin", data: data}
}
