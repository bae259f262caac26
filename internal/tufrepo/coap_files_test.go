package tufrepo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestCache(t *testing.T, dir string, ttl time.Duration) (*fileCache, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := newFileCache(filepath.Join(dir, repositoryDir), ttl)
	c.now = clk.now
	t.Cleanup(c.close)
	return c, clk
}

// replaceServed replaces a served file by rename, as Publish does.
func replaceServed(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, repositoryDir, filepath.FromSlash(rel))
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// isClosed reports whether the cache closed e's file.
func isClosed(e *servedFile) bool {
	_, err := e.f.Stat()
	return errors.Is(err, os.ErrClosed)
}

func readAll(t *testing.T, e *servedFile) string {
	t.Helper()
	b := make([]byte, e.size)
	if _, err := e.f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustOpen(t *testing.T, c *fileCache, name string, fresh bool) *servedFile {
	t.Helper()
	e, err := c.open(name, fresh)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A transfer stays on the file it started with for at most the TTL; block
// 0 always sees the file as it is now.
func TestFileCacheFreshness(t *testing.T) {
	dir := t.TempDir()
	writeServed(t, dir, "a.bin", []byte("one"))
	c, clk := newTestCache(t, dir, time.Second)

	first := mustOpen(t, c, "a.bin", true)
	c.release(first)
	if e := mustOpen(t, c, "a.bin", false); e != first {
		t.Fatal("a later block within the TTL reopened the file")
	} else {
		c.release(e)
	}

	replaceServed(t, dir, "a.bin", "two-two")
	if e := mustOpen(t, c, "a.bin", false); e != first || readAll(t, e) != "one" {
		t.Fatal("a later block within the TTL did not stay on the file the transfer started with")
	} else {
		c.release(e)
	}

	fresh := mustOpen(t, c, "a.bin", true)
	if readAll(t, fresh) != "two-two" || fresh.etag == first.etag {
		t.Fatalf("block 0 after the replacement: %q, ETag %x (was %x)", readAll(t, fresh), fresh.etag, first.etag)
	}
	c.release(fresh)
	if !isClosed(first) {
		t.Fatal("the replaced file is still open")
	}

	replaceServed(t, dir, "a.bin", "three")
	clk.advance(time.Second)
	late := mustOpen(t, c, "a.bin", false)
	if late == fresh || readAll(t, late) != "three" {
		t.Fatal("a block after the TTL came from the old file")
	}
	c.release(late)
	if !isClosed(fresh) {
		t.Fatal("the expired file is still open")
	}

	clk.advance(time.Second)
	c.sweep()
	if c.len() != 0 || !isClosed(late) {
		t.Fatalf("after sweep: %d cached, last closed %v", c.len(), isClosed(late))
	}
}

// A file is closed only once no request reads it.
func TestFileCacheClosesAfterRelease(t *testing.T) {
	dir := t.TempDir()
	writeServed(t, dir, "a.bin", []byte("one"))
	c, clk := newTestCache(t, dir, time.Second)

	inUse := mustOpen(t, c, "a.bin", true)
	again := mustOpen(t, c, "a.bin", false) // a second request on the same file
	newer := mustOpen(t, c, "a.bin", true)  // replaces it in the cache
	clk.advance(time.Hour)
	c.sweep()
	c.close()
	if isClosed(inUse) || isClosed(newer) {
		t.Fatal("a file was closed while a request reads it")
	}
	c.release(inUse)
	if isClosed(inUse) {
		t.Fatal("closed while a second request still reads it")
	}
	c.release(again)
	c.release(newer)
	if !isClosed(inUse) || !isClosed(newer) {
		t.Fatal("not closed after the last release")
	}
	if e := mustOpen(t, c, "a.bin", false); c.len() != 0 {
		t.Fatal("a closed cache still caches")
	} else {
		c.release(e)
		if !isClosed(e) {
			t.Fatal("file opened after close stays open")
		}
	}
}

func TestFileCacheBounded(t *testing.T) {
	dir := t.TempDir()
	var opened []*servedFile
	for i := range fileCacheMax + 5 {
		name := fmt.Sprintf("f%02d.bin", i)
		writeServed(t, dir, name, []byte(name))
	}
	c, clk := newTestCache(t, dir, time.Minute)
	for i := range fileCacheMax + 5 {
		clk.advance(time.Millisecond) // distinct open times: the oldest goes first
		e := mustOpen(t, c, fmt.Sprintf("f%02d.bin", i), true)
		c.release(e)
		opened = append(opened, e)
	}
	if c.len() != fileCacheMax {
		t.Fatalf("%d files cached, bound %d", c.len(), fileCacheMax)
	}
	for i, e := range opened {
		if want := i < 5; isClosed(e) != want {
			t.Errorf("file %d closed %v, want %v", i, isClosed(e), want)
		}
	}
}

func TestFileCacheDisabled(t *testing.T) {
	dir := t.TempDir()
	writeServed(t, dir, "a.bin", []byte("one"))
	c, _ := newTestCache(t, dir, 0)
	a := mustOpen(t, c, "a.bin", false)
	b := mustOpen(t, c, "a.bin", false)
	if a == b || c.len() != 0 {
		t.Fatal("a zero TTL cached")
	}
	c.release(a)
	c.release(b)
	if !isClosed(a) || !isClosed(b) {
		t.Fatal("uncached files left open")
	}
}

func TestFileCacheRefusals(t *testing.T) {
	dir := t.TempDir()
	writeServed(t, dir, "sub/a.bin", []byte("one"))
	c, _ := newTestCache(t, dir, time.Second)
	for _, name := range []string{"missing.bin", "sub"} {
		if _, err := c.open(name, false); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open %s: %v, want fs.ErrNotExist", name, err)
		}
	}
}

func TestErrorReporterLimitsRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var got []error
	r := &errorReporter{fn: func(err error) { got = append(got, err) }, now: clk.now}
	errFirst := errors.New("first")
	r.report(errFirst)
	for i := range errorsPerSecond + 4 {
		r.report(fmt.Errorf("junk %d", i))
	}
	if len(got) != errorsPerSecond || !errors.Is(got[0], errFirst) {
		t.Fatalf("%d reported in one second, want %d", len(got), errorsPerSecond)
	}
	clk.advance(time.Second)
	errLater := errors.New("later")
	r.report(errLater)
	last := got[len(got)-1]
	if len(got) != errorsPerSecond+1 || !errors.Is(last, errLater) || !strings.Contains(last.Error(), "5 more") {
		t.Fatalf("after a second: %d reported, last %v", len(got), last)
	}

	(&errorReporter{now: clk.now}).report(errLater) // no sink: dropped
}
