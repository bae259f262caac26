package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// sink receives the bytes of one transfer. Transports write the body from
// Offset on, call Reset when the source starts over from byte 0 (an HTTP
// server that ignored Range, a changed CoAP ETag), and Announce the total
// length as soon as the source declares it, so that a wrong length fails
// before the body is read. Errors from a sink are *step.Error and are
// returned by transports unchanged.
type sink interface {
	io.Writer
	Offset() int64
	Reset() error
	Announce(total int64) error
}

// tooLong is the endless-data failure.
func tooLong(limit int64) *step.Error {
	return failure(swu.ResultValidation,
		fmt.Sprintf("The package server sent more than the %d bytes the metadata allows", limit),
		fmt.Errorf("%w: limit %d", ErrTooLong, limit))
}

// hashCheck is one expected digest and the running hash computing it.
type hashCheck struct {
	name string
	want []byte
	h    hash.Hash
}

// supportedHashes are the TUF hash algorithms Download verifies.
var supportedHashes = map[string]func() hash.Hash{
	"sha256": sha256.New,
	"sha512": sha512.New,
}

// newHashChecks returns a check for every supported algorithm in want
// (others are ignored), sorted by name. It is result 5 when none is
// supported or a digest has the wrong size: the package cannot be verified.
func newHashChecks(want map[string][]byte) ([]hashCheck, error) {
	var checks []hashCheck
	for name, digest := range want {
		newHash, ok := supportedHashes[name]
		if !ok {
			continue
		}
		h := newHash()
		if len(digest) != h.Size() {
			return nil, failure(swu.ResultValidation, fmt.Sprintf("The package metadata has a malformed %s hash", name),
				fmt.Errorf("%s digest is %d bytes, want %d", name, len(digest), h.Size()))
		}
		checks = append(checks, hashCheck{name: name, want: bytes.Clone(digest), h: h})
	}
	if len(checks) == 0 {
		return nil, failure(swu.ResultValidation, "The package metadata has no sha256 or sha512 hash to verify it with",
			fmt.Errorf("no supported hash among %d", len(want)))
	}
	sort.Slice(checks, func(i, j int) bool { return checks[i].name < checks[j].name })
	return checks, nil
}

// fileSink writes a package to its .part file, hashing on the fly and
// refusing any byte past the expected length.
type fileSink struct {
	f        *os.File
	path     string
	length   int64
	off      int64
	checks   []hashCheck
	progress step.ProgressFunc
}

func (s *fileSink) Offset() int64 { return s.off }

func (s *fileSink) Write(p []byte) (int, error) {
	if int64(len(p)) > s.length-s.off {
		return 0, tooLong(s.length)
	}
	n, err := s.f.Write(p)
	for _, c := range s.checks {
		c.h.Write(p[:n])
	}
	s.off += int64(n)
	if n > 0 {
		s.progress(s.off, s.length)
	}
	if err != nil {
		return n, diskFailure(err, s.path)
	}
	return n, nil
}

func (s *fileSink) Reset() error {
	if err := s.f.Truncate(0); err != nil {
		return diskFailure(err, s.path)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return diskFailure(err, s.path)
	}
	for _, c := range s.checks {
		c.h.Reset()
	}
	s.off = 0
	s.progress(0, s.length)
	return nil
}

func (s *fileSink) Announce(total int64) error {
	if total != s.length {
		return failure(swu.ResultValidation,
			fmt.Sprintf("The package on the server is %d bytes but the metadata says %d", total, s.length),
			fmt.Errorf("%w: server %d, metadata %d", ErrLengthMismatch, total, s.length))
	}
	return nil
}

// resume hashes the first off bytes already in the file (the hash state
// does not survive a restart) and positions the file after them. buf is
// the transfer buffer, reused so resuming costs no extra memory.
func (s *fileSink) resume(ctx context.Context, off int64, buf []byte) error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return diskFailure(err, s.path)
	}
	r := io.LimitReader(s.f, off)
	for {
		if err := ctx.Err(); err != nil { // hashing a large prefix takes a while
			return fmt.Errorf("hash %s: %w", s.path, err)
		}
		n, err := r.Read(buf)
		for _, c := range s.checks {
			c.h.Write(buf[:n])
		}
		s.off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return diskFailure(err, s.path)
		}
	}
	if s.off != off { // the file shrank under us: start over
		return s.Reset()
	}
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return diskFailure(err, s.path)
	}
	s.progress(s.off, s.length)
	return nil
}

// verify checks the length and every hash of the bytes written so far.
func (s *fileSink) verify() *step.Error {
	if s.off != s.length {
		return failure(swu.ResultValidation,
			fmt.Sprintf("The package server sent %d bytes but the metadata says %d", s.off, s.length),
			fmt.Errorf("%w: got %d, metadata %d", ErrLengthMismatch, s.off, s.length))
	}
	for _, c := range s.checks {
		if subtle.ConstantTimeCompare(c.h.Sum(nil), c.want) != 1 {
			return failure(swu.ResultValidation,
				fmt.Sprintf("The downloaded package does not match its %s hash", c.name),
				fmt.Errorf("%w: %s", ErrHashMismatch, c.name))
		}
	}
	return nil
}

// memSink collects a small file (TUF metadata) in memory, up to max bytes.
type memSink struct {
	buf bytes.Buffer
	max int64
}

func (s *memSink) Offset() int64 { return int64(s.buf.Len()) }

func (s *memSink) Write(p []byte) (int, error) {
	if int64(len(p)) > s.max-int64(s.buf.Len()) {
		return 0, tooLong(s.max)
	}
	return s.buf.Write(p)
}

func (s *memSink) Reset() error {
	s.buf.Reset()
	return nil
}

func (s *memSink) Announce(total int64) error {
	if total > s.max {
		return tooLong(s.max)
	}
	return nil
}
