package tufclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// refresh runs the TUF client workflow against the repository at base and
// returns its verified top-level targets. A new updater is made every time:
// go-tuf's Refresh works once per updater, and a fresh one re-reads the
// cache, so nothing verified by an earlier call is taken on trust except
// what TUF itself keeps for rollback protection.
func (c *Client) refresh(ctx context.Context, base *url.URL) (*metadata.Metadata[metadata.TargetsType], error) {
	cache := c.cacheDir(base)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, diskError("create the TUF metadata cache", err)
	}
	c.dropUnparsable(cache)
	root := c.startRoot(cache)

	rec := &recorder{next: c.cfg.Downloader.TUFFetcher(ctx)}
	cfg, err := config.New(base.JoinPath(tufrepo.MetadataPath).String(), root)
	if err != nil {
		return nil, &step.Error{Result: swu.ResultInvalidURL, Detail: "The package URL cannot be used as a TUF repository", Err: err}
	}
	cfg.RemoteTargetsURL = base.JoinPath(tufrepo.TargetsPath).String()
	cfg.LocalMetadataDir = cache
	// Packages are streamed by the Downloader, never through go-tuf (which
	// holds a whole target in memory); this directory stays empty.
	cfg.LocalTargetsDir = cache
	cfg.Fetcher = rec

	up, err := updater.New(cfg)
	if err != nil && !equalBytes(root, c.cfg.TrustedRoot) {
		// The cached root does not load (it should, as go-tuf verified
		// it before writing): start the chain from the configured one.
		c.log.Warn("cached TUF root unusable; starting from the configured root", "err", err)
		cfg.LocalTrustedRoot = c.cfg.TrustedRoot
		up, err = updater.New(cfg)
	}
	if err != nil {
		return nil, c.mapError(ctx, "load the trusted root", err, nil, rec)
	}
	up.UnsafeSetRefTime(c.cfg.Now().UTC())
	if err := up.Refresh(); err != nil {
		return nil, c.mapError(ctx, "refresh TUF metadata", err, up, rec)
	}
	ts := up.GetTrustedMetadataSet()
	targets := ts.Targets[metadata.TARGETS]
	if targets == nil {
		return nil, &step.Error{Result: swu.ResultUpdateFailed, Detail: "TUF refresh returned no targets metadata"}
	}
	c.log.Debug("TUF metadata verified", "purl", redact(base), "root", ts.Root.Signed.Version,
		"timestamp", ts.Timestamp.Signed.Version, "snapshot", ts.Snapshot.Signed.Version,
		"targets", targets.Signed.Version)
	return targets, nil
}

// cacheDir is the metadata cache for the repository at base under the
// configured root. Naming it by both means a device moved to another
// repository, or given another trust root, starts a clean chain instead of
// failing on metadata that belongs to the old one.
func (c *Client) cacheDir(base *url.URL) string {
	h := sha256.New()
	h.Write(c.rootID[:])
	h.Write([]byte{0})
	h.Write([]byte(base.String()))
	return filepath.Join(c.cfg.CacheDir, hex.EncodeToString(h.Sum(nil)[:16]))
}

// startRoot returns the root the chain starts from: the cached root when it
// is newer than the configured one (the device has already followed a key
// rotation and must not fall back to the old keys), else the configured
// root. go-tuf's updater writes it back to the cache.
func (c *Client) startRoot(cache string) []byte {
	cfgRoot, err := metadata.Root().FromBytes(c.cfg.TrustedRoot)
	if err != nil { // validate parsed it already
		return c.cfg.TrustedRoot
	}
	data, err := os.ReadFile(filepath.Join(cache, metadata.ROOT+".json"))
	if err != nil {
		return c.cfg.TrustedRoot
	}
	cached, err := metadata.Root().FromBytes(data)
	if err != nil || cached.Signed.Version <= cfgRoot.Signed.Version {
		return c.cfg.TrustedRoot
	}
	return data
}

// dropUnparsable deletes cached metadata that does not even parse. go-tuf
// skips a cached file that fails verification but gives up on one that is
// not JSON (say, emptied by a power loss, as it writes without fsync), which
// would fail every later refresh with the same error.
func (c *Client) dropUnparsable(cache string) {
	parse := map[string]func([]byte) error{
		metadata.ROOT:      func(b []byte) error { _, err := metadata.Root().FromBytes(b); return err },
		metadata.TIMESTAMP: func(b []byte) error { _, err := metadata.Timestamp().FromBytes(b); return err },
		metadata.SNAPSHOT:  func(b []byte) error { _, err := metadata.Snapshot().FromBytes(b); return err },
		metadata.TARGETS:   func(b []byte) error { _, err := metadata.Targets().FromBytes(b); return err },
	}
	for role, p := range parse {
		name := filepath.Join(cache, role+".json")
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if err := p(data); err != nil {
			c.log.Warn("dropping unreadable cached TUF metadata", "file", name, "err", err)
			if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				c.log.Warn("cannot remove cached TUF metadata", "file", name, "err", rerr)
			}
		}
	}
}

// recorder passes downloads through and remembers the last one, so that a
// verification error, which does not say which file failed, can be
// explained: go-tuf verifies each file right after downloading it.
type recorder struct {
	next     fetcher.Fetcher
	lastURL  string
	lastData []byte
}

func (r *recorder) DownloadFile(urlPath string, maxLength int64, timeout time.Duration) ([]byte, error) {
	r.lastURL, r.lastData = urlPath, nil
	data, err := r.next.DownloadFile(urlPath, maxLength, timeout)
	if err == nil {
		r.lastData = data
	}
	return data, err
}

// lastRole is the role of the last downloaded file ("timestamp" for
// .../timestamp.json, "root" for .../3.root.json), or "".
func (r *recorder) lastRole() string {
	if r.lastURL == "" {
		return ""
	}
	name := strings.TrimSuffix(r.lastURL[strings.LastIndexByte(r.lastURL, '/')+1:], ".json")
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// packageDigest picks the hash that names the package file: sha256 when
// signed, else sha512 (tufrepo stores the file under both).
func packageDigest(tf *metadata.TargetFiles) ([]byte, string) {
	for _, alg := range []string{"sha256", "sha512"} {
		if h := tf.Hashes[alg]; len(h) > 0 {
			return h, alg
		}
	}
	return nil, ""
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
