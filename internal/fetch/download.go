package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fsync"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// PartSuffix is appended to a download's destination while it is
// incomplete or unverified.
const PartSuffix = ".part"

// copyBufSize is the one buffer a transfer reads the network and re-hashes
// a resumed prefix through: memory does not grow with the package.
const copyBufSize = 32 << 10

// maxRestarts bounds how often one transfer may start over from byte 0
// because the source changed (CoAP ETag) before it is a validation failure.
const maxRestarts = 3

// Expect is what signed metadata says about a package.
type Expect struct {
	// Length is the exact size in bytes; more is refused as it arrives.
	Length int64
	// Hashes maps a TUF hash algorithm name to its digest. sha256 and
	// sha512 are verified (all that are present); others are ignored, but
	// at least one supported hash is required.
	Hashes map[string][]byte
}

// Downloader fetches packages and metadata. It is safe for concurrent use
// by several goroutines, but not for concurrent downloads to the same dst.
type Downloader struct {
	cfg  Config
	http *http.Client
}

// New returns a Downloader for cfg, with defaults for zero fields.
func New(cfg Config) (*Downloader, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Downloader{cfg: cfg}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient // shallow copy: the caller's client stays as it was
		d.http = &c
	} else {
		tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
		if def, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = def.Clone() // dial and idle timeouts, proxy from the environment
		}
		tr.TLSClientConfig = cfg.TLSConfig.Clone()
		d.http = &http.Client{Transport: tr}
	}
	d.http.CheckRedirect = d.checkRedirect
	return d, nil
}

// Close releases idle connections. The Downloader stays usable.
func (d *Downloader) Close() {
	d.http.CloseIdleConnections()
}

// RemovePartial removes the partial download for dst, if any.
func RemovePartial(dst string) error {
	if err := os.Remove(dst + PartSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove partial download: %w", err)
	}
	return nil
}

// Download fetches rawURL to dst and verifies it against want; see the
// package documentation for resumption, bounds and results. dst's directory
// must exist. progress (may be nil) is called from the calling goroutine
// after every chunk written and must be cheap. Failures are *step.Error;
// cancellation returns ctx's error and keeps dst+".part" for a later call.
func (d *Downloader) Download(ctx context.Context, rawURL, dst string, want Expect, progress step.ProgressFunc) error {
	u, err := ParseURL(rawURL, d.cfg.AllowInsecure)
	if err != nil {
		return err
	}
	if want.Length < 0 {
		return fmt.Errorf("download %s: negative expected length %d", redact(u), want.Length)
	}
	checks, err := newHashChecks(want.Hashes)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	log := d.cfg.Logger.With("url", redact(u), "dst", dst)
	buf := make([]byte, copyBufSize)

	// A verified dst means an earlier run finished but was stopped before
	// its caller recorded it: nothing to fetch.
	if d.alreadyDone(ctx, dst, want.Length, checks, buf) {
		log.Info("package already downloaded and verified")
		progress(want.Length, want.Length)
		return nil
	}
	for i := range checks {
		checks[i].h.Reset()
	}

	part := dst + PartSuffix
	var have int64
	if fi, err := os.Stat(part); err == nil && fi.Mode().IsRegular() && fi.Size() <= want.Length {
		have = fi.Size()
	}
	if need := want.Length - have; need > 0 {
		if err := d.checkSpace(filepath.Dir(dst), need, log); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return diskFailure(err, part)
	}
	defer f.Close() // after a successful rename this is a harmless double close
	// Drop anything past have: a .part longer than the package is stale.
	if err := f.Truncate(have); err != nil {
		return diskFailure(err, part)
	}
	s := &fileSink{f: f, path: part, length: want.Length, checks: checks, progress: progress}
	if err := s.resume(ctx, have, buf); err != nil {
		return err
	}
	if s.off > 0 {
		log.Info("resuming download", "offset", s.off, "length", want.Length)
	}

	resumed := s.off > 0
	for {
		if s.off < want.Length {
			if err := d.transfer(ctx, u, s, buf, log); err != nil {
				return d.discardIfInvalid(err, f, part, s.off == 0)
			}
		}
		verr := s.verify()
		if verr == nil {
			break
		}
		if resumed && errors.Is(verr, ErrHashMismatch) {
			// The prefix came from an earlier run and may be stale; one
			// fresh download decides.
			log.Warn("resumed download does not verify; starting over", "err", verr)
			resumed = false
			if err := s.Reset(); err != nil {
				return err
			}
			continue
		}
		return d.discardIfInvalid(verr, f, part, s.off == 0)
	}

	if err := f.Sync(); err != nil {
		return diskFailure(err, part)
	}
	if err := f.Close(); err != nil {
		return diskFailure(err, part)
	}
	if err := os.Rename(part, dst); err != nil {
		return diskFailure(err, dst)
	}
	if err := fsync.Dir(filepath.Dir(dst)); err != nil {
		return diskFailure(err, dst)
	}
	log.Info("download verified", "length", want.Length)
	return nil
}

// discardIfInvalid deletes the .part after a validation failure (its
// content is suspect and must not be resumed) or when it is empty (nothing
// to resume).
func (d *Downloader) discardIfInvalid(err error, f *os.File, part string, empty bool) error {
	var se *step.Error
	if empty || errors.As(err, &se) && se.Result == swu.ResultValidation {
		_ = f.Close()
		if rerr := os.Remove(part); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			d.cfg.Logger.Warn("cannot remove invalid partial download", "path", part, "err", rerr)
		}
	}
	return err
}

// alreadyDone reports whether dst exists with the expected length and
// hashes.
func (d *Downloader) alreadyDone(ctx context.Context, dst string, length int64, checks []hashCheck, buf []byte) bool {
	f, err := os.Open(dst)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != length {
		return false
	}
	s := &fileSink{f: f, path: dst, length: length, checks: checks, progress: func(int64, int64) {}}
	if err := s.resume(ctx, length, buf); err != nil {
		return false
	}
	return s.verify() == nil
}

// checkSpace fails with result 3 when dir's file system has less than need
// plus the margin free. An unknown free space is logged, not fatal.
func (d *Downloader) checkSpace(dir string, need int64, log *slog.Logger) error {
	free, err := d.cfg.FreeSpace(dir)
	if err != nil {
		log.Warn("cannot check free space; downloading anyway", "dir", dir, "err", err)
		return nil
	}
	if free < need+d.cfg.FreeSpaceMargin {
		return failure(swu.ResultNoFlash,
			fmt.Sprintf("Not enough free storage: the package needs %d more bytes, %d are free", need, free),
			fmt.Errorf("free space in %s: %d < %d + margin %d", dir, free, need, d.cfg.FreeSpaceMargin))
	}
	return nil
}

// Get fetches a small file (TUF metadata) into memory, at most maxLength
// bytes, with the same retries and result mapping as Download.
func (d *Downloader) Get(ctx context.Context, rawURL string, maxLength int64) ([]byte, error) {
	u, err := ParseURL(rawURL, d.cfg.AllowInsecure)
	if err != nil {
		return nil, err
	}
	if maxLength <= 0 {
		return nil, fmt.Errorf("get %s: maxLength %d is not positive", redact(u), maxLength)
	}
	s := &memSink{max: maxLength}
	log := d.cfg.Logger.With("url", redact(u))
	if err := d.transfer(ctx, u, s, make([]byte, min(copyBufSize, maxLength+1)), log); err != nil {
		return nil, err
	}
	return s.buf.Bytes(), nil
}

// transferState is carried across the attempts of one transfer.
type transferState struct {
	etag      []byte // CoAP ETag of the representation being fetched
	blockSize int64  // CoAP block size, possibly lowered by the server
	restarts  int    // times the source changed and the sink was reset
}

// transfer runs attempts until the source says the body is complete, a
// failure is not retryable, or MaxRetries attempts in a row made no
// progress. It returns nil, a *step.Error, or ctx's error.
func (d *Downloader) transfer(ctx context.Context, u *url.URL, s sink, buf []byte, log *slog.Logger) error {
	st := &transferState{blockSize: int64(d.cfg.CoAPBlockSize)}
	best := s.Offset()
	failures := 0
	for {
		var err error
		if isCoAP(u) {
			err = d.coapAttempt(ctx, u, s, st)
		} else {
			err = d.httpAttempt(ctx, u, s, buf)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", redact(u), ctx.Err())
		}
		var se *step.Error
		if !errors.As(err, &se) {
			return fmt.Errorf("download %s: %w", redact(u), err)
		}
		if !retryable(se) {
			return se
		}
		if s.Offset() > best {
			best, failures = s.Offset(), 0
		}
		failures++
		if failures > d.cfg.MaxRetries {
			return failure(se.Result, fmt.Sprintf("%s (gave up after %d attempts without progress)", se.Detail, failures), se.Err)
		}
		delay := d.backoff(failures)
		log.Warn("download attempt failed; retrying", "err", err, "offset", s.Offset(), "failures", failures, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("download %s: %w", redact(u), ctx.Err())
		case <-t.C:
		}
	}
}

// backoff is the wait before retry n (1-based): BackoffMin doubling up to
// BackoffMax, then a random point in its upper half so that a fleet that
// lost its server at the same moment does not come back in lockstep.
func (d *Downloader) backoff(n int) time.Duration {
	delay := d.cfg.BackoffMin
	for i := 1; i < n && delay < d.cfg.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.cfg.BackoffMax)
	if delay <= 1 {
		return delay
	}
	half := delay / 2
	return half + rand.N(delay-half+1)
}
