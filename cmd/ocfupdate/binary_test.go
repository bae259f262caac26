package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// buildBinary builds ocfupdate into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ocfupdate")
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryServe runs the real binary: init, then serve on ephemeral ports
// as a script would, fetch over both listeners, SIGTERM, exit 0.
func TestBinaryServe(t *testing.T) {
	bin := buildBinary(t)
	// A guard against a hung process, not a timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	dir := filepath.Join(t.TempDir(), "repo")
	if out, err := exec.CommandContext(ctx, bin, "repo", "init", dir).CombinedOutput(); err != nil {
		t.Fatalf("repo init: %v\n%s", err, out)
	}
	// Usage errors exit 2 from the binary too.
	err := exec.CommandContext(ctx, bin, "repo", "init").Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("repo init without DIR: %v, want exit %d", err, exitUsage)
	}

	cmd := exec.CommandContext(ctx, bin, "repo", "serve", dir, "--https", "127.0.0.1:0", "--coap", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read stderr's first line, then keep draining both pipes so the
	// process never blocks on them; Wait only after they are drained.
	errLines := bufio.NewReader(stderr)
	first, err := errLines.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("stderr: %q, %v", first, err)
	}
	var restErr bytes.Buffer
	errDone := make(chan struct{})
	go func() { _, _ = io.Copy(&restErr, errLines); close(errDone) }()

	sc := bufio.NewScanner(stdout)
	urls := parseServing(t, sc, 2, func() string { return first })
	outDone := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdout); close(outDone) }()

	certPath, ok := strings.CutPrefix(strings.TrimSuffix(first, "\n"), "tls certificate: ")
	if !ok {
		t.Errorf("first stderr line %q, want \"tls certificate: PATH\"", first)
	}
	timestamp := tufrepotest.ReadFile(t, filepath.Join(dir, "repository", "metadata", "timestamp.json"))
	status, _, body := httpsGet(t, httpsClient(t, certPool(t, certPath)), urls["https"]+"/metadata/timestamp.json", "")
	if status != http.StatusOK || !bytes.Equal(body, timestamp) {
		t.Errorf("https timestamp.json: %d, %d bytes", status, len(body))
	}
	cc, err := udp.Dial(strings.TrimPrefix(urls["coap"], "coap://"), coapOptions(t)...)
	if err != nil {
		t.Fatal(err)
	}
	closeCoAP(t, cc)
	if got := coapGet(t, cc, "/metadata/timestamp.json", blockwise.SZX1024); !bytes.Equal(got, timestamp) {
		t.Error("coap timestamp.json differs")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-outDone
	<-errDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0; stderr %q", err, restErr.String())
	}
	if _, err := os.Stat(certPath); err != nil {
		t.Errorf("printed certificate path: %v", err)
	}
}
