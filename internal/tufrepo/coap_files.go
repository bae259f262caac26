package tufrepo

import (
	"os"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
)

// A block-wise download opens the same file once per block. fileCache
// keeps a few recently opened files so that consecutive blocks are one
// pread each instead of a path walk, an open, a stat and a close.
//
// Freshness: the repository replaces files by rename, never in place, so
// an open file keeps the content (and ETag) it was opened with. A cached
// file is used for fileCacheTTL at most, and never for block 0: a new
// transfer, and every metadata file smaller than a block, always sees the
// file as it is now, while blocks after the first may come from the file
// as it was up to fileCacheTTL ago, which the ETag on every block tells
// the client. Nothing is read from a stale file after fileCacheTTL, and a
// file the repository removed is closed within fileCacheSweep.
const (
	fileCacheTTL   = time.Second
	fileCacheMax   = 16
	fileCacheSweep = 5 * time.Second
)

// servedFile is an open repository file and what every block needs of it.
type servedFile struct {
	name   string
	f      *os.File
	size   int64
	etag   [8]byte
	format message.MediaType
	opened time.Time
	refs   int  // requests reading it; guarded by fileCache.mu
	stale  bool // out of the cache: closed when refs drops to zero
}

// fileCache is safe for concurrent use. A zero ttl disables caching: every
// request opens the file.
type fileCache struct {
	root string
	ttl  time.Duration
	now  func() time.Time

	mu     sync.Mutex
	files  map[string]*servedFile
	closed bool
}

func newFileCache(root string, ttl time.Duration) *fileCache {
	return &fileCache{root: root, ttl: ttl, now: time.Now, files: make(map[string]*servedFile)}
}

// open returns the file served at name (relative to the root, already
// checked by servedName); fresh skips the cache. Release it when done.
func (c *fileCache) open(name string, fresh bool) (*servedFile, error) {
	now := c.now()
	if !fresh && c.ttl > 0 {
		c.mu.Lock()
		if e := c.files[name]; e != nil && now.Sub(e.opened) < c.ttl {
			e.refs++
			c.mu.Unlock()
			return e, nil
		}
		c.mu.Unlock()
	}
	f, fi, err := openServed(c.root, name)
	if err != nil {
		return nil, err
	}
	e := &servedFile{name: name, f: f, size: fi.Size(), format: coapFormat(fi.Name()), opened: now, refs: 1}
	copy(e.etag[:], fileETag(fi))

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ttl <= 0 {
		e.stale = true // closed on release
		return e, nil
	}
	if old := c.files[name]; old != nil {
		c.retire(old)
	}
	c.sweepLocked(now)
	if len(c.files) >= fileCacheMax {
		var oldest *servedFile
		for _, o := range c.files {
			if oldest == nil || o.opened.Before(oldest.opened) {
				oldest = o
			}
		}
		c.retire(oldest)
	}
	c.files[name] = e
	return e, nil
}

// release ends a request's use of e.
func (c *fileCache) release(e *servedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.stale && e.refs == 0 {
		_ = e.f.Close() // read-only: nothing to flush
	}
}

// sweep closes the files that are no longer fresh enough to be used.
func (c *fileCache) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(c.now())
}

func (c *fileCache) sweepLocked(now time.Time) {
	for _, e := range c.files {
		if now.Sub(e.opened) >= c.ttl {
			c.retire(e)
		}
	}
}

// retire takes e out of the cache and closes it unless a request still
// reads it.
func (c *fileCache) retire(e *servedFile) {
	delete(c.files, e.name)
	e.stale = true
	if e.refs == 0 {
		_ = e.f.Close()
	}
}

// close closes every cached file (those in use, once released) and stops
// caching.
func (c *fileCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, e := range c.files {
		c.retire(e)
	}
}

// len is the number of cached files (for tests).
func (c *fileCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.files)
}
