package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// TestKillAndResume SIGKILLs the agent in the middle of a download, starts
// it again on the same data dir, and checks that the download continues
// where it stopped and the upgrade completes: the bytes served for the
// package stay below 1.5 times its size.
func TestKillAndResume(t *testing.T) {
	const size = 4 << 20
	r := newRepo(t, "thermo", "1.0.0")
	r.add(t, "thermo", "1.1.0", size)
	r.publish(t)
	var served atomic.Int64
	var pkgLen atomic.Int64
	purl, ca := r.serveHTTPS(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if !isPackage(req) {
				h.ServeHTTP(w, req)
				return
			}
			h.ServeHTTP(&slowWriter{ResponseWriter: w, served: &served, total: &pkgLen}, req)
		})
	})
	dir := t.TempDir()
	args := []string{"--trust", r.root, "--ca", ca, "--model", "thermo", "--version", "1.0.0", "--restart=false"}
	d := startDaemon(t, dir, args...)
	c, err := client.Dial(ctxT(t), d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctxT(t), "/oc/swu", client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	// Kill once a third of the package is on disk.
	s := waitStatus(t, c, func(s client.Status) bool {
		return s.State == "svv" && s.Progress != nil && s.Progress.Done > size/3
	})
	c.Close()
	d.Signal(t, syscall.SIGKILL)
	before := served.Load()
	if before >= size {
		t.Fatalf("the download finished before the kill (%d bytes served; progress %+v)", before, s.Progress)
	}

	d = startDaemon(t, dir, args...)
	c, err = client.Dial(ctxT(t), d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s = waitStatus(t, c, func(s client.Status) bool { return s.State == "idle" && s.Action == "idle" })
	if s.Result != 1 || deviceSV(t, d.Endpoint) != "1.1.0" {
		t.Fatalf("after resume: %+v", s)
	}
	total := served.Load()
	t.Logf("package %d bytes: %d served before the kill, %d in all (%.2fx)", pkgLen.Load(), before, total, float64(total)/float64(pkgLen.Load()))
	if total >= pkgLen.Load()*3/2 {
		t.Errorf("served %d bytes for a %d-byte package: the download restarted", total, pkgLen.Load())
	}
}

// slowWriter serves a package at about 4 MiB/s so a test can kill the
// agent in the middle, counting the bytes that went out.
type slowWriter struct {
	http.ResponseWriter
	served, total *atomic.Int64
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.total.Load() == 0 {
		if n := w.Header().Get("Content-Range"); n == "" {
			var l int64
			for _, ch := range w.Header().Get("Content-Length") {
				l = l*10 + int64(ch-'0')
			}
			w.total.Store(l)
		}
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), 16<<10)
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		w.served.Add(int64(m))
		if err != nil {
			return written, err
		}
		p = p[n:]
		time.Sleep(4 * time.Millisecond)
	}
	return written, nil
}

// TestDiskTooSmall: a data dir on a 2 MiB tmpfs cannot take a 4 MiB
// package: result 3 before anything is downloaded. Needs root to mount.
func TestDiskTooSmall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	r := newRepo(t, "thermo", "1.0.0")
	r.add(t, "thermo", "1.1.0", 4<<20)
	r.publish(t)
	purl, ca := r.serveHTTPS(t, nil)
	d := startDaemon(t, dir, "--trust", r.root, "--ca", ca, "--model", "thermo", "--version", "1.0.0")
	s := runUpdate(t, d.Endpoint, purl)
	if s.Result != 3 || deviceSV(t, d.Endpoint) != "1.0.0" {
		t.Fatalf("on a full disk: %+v", s)
	}
}
