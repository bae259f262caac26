// Package store is the agent's atomic persistent state: a data directory that
// holds a few small JSON documents (identity, resource state, schedule), each
// replaced as a whole and crash-safely.
//
// Like Mender's datastore, the agent writes the state it is about to enter
// before it acts on it, so every Save must be all-or-nothing across a crash
// or a power loss at any instant. A Save therefore writes name.tmp in the
// same directory, fsyncs it, renames it over name and fsyncs the directory:
// after a crash a Load returns either the previous or the new document,
// never a mixture and never an empty file. A name.tmp left behind by a crash
// is removed at Open.
//
// One agent owns a data directory: Open takes an exclusive advisory lock
// (flock on the file "lock") that the kernel releases when the process dies,
// so a second agent fails with ErrLocked instead of interleaving writes.
//
// # Versions
//
// Every document carries its schema version as a top-level field
//
//	{"version": 2, ...}
//
// that the caller embeds in its own struct and bumps whenever the meaning of
// a field changes:
//
//	type State struct {
//		Version int `json:"version"` // stateVersion
//		...
//	}
//
// LoadVersioned rejects a document without a version and one newer than the
// caller understands (ErrUnsupportedVersion): after a downgrade the agent
// must stop rather than overwrite state it cannot read with defaults. It
// returns the version found so the caller can migrate older documents.
//
// Like Mender's state names, document names are fixed strings of the
// caller ("state", "identity"), never built from input.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ocfupdate/ocfupdate/internal/flock"
	"github.com/ocfupdate/ocfupdate/internal/fsync"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no document of that name has been saved.
	ErrNotFound = errors.New("document not found")
	// ErrCorrupt: the file exists but is not a valid document for the
	// caller. The state is unknown; it is never reported as a zero value.
	ErrCorrupt = errors.New("corrupt document")
	// ErrLocked: another process (or another Open in this process) holds the
	// data directory.
	ErrLocked = errors.New("data directory is in use by another process")
	// ErrInvalidName: a document name that is not a plain file name.
	ErrInvalidName = errors.New("invalid document name")
	// ErrTooLarge: the document exceeds MaxDocumentSize.
	ErrTooLarge = errors.New("document too large")
	// ErrUnsupportedVersion: the document's schema version is newer than the
	// caller understands.
	ErrUnsupportedVersion = errors.New("unsupported document version")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store closed")
)

// MaxDocumentSize bounds a document on disk and in memory. The agent's
// documents are a few hundred bytes; anything near this is a bug or damage.
const MaxDocumentSize = 1 << 20

const (
	lockName  = "lock"
	tmpSuffix = ".tmp"
	maxName   = 128
	dirMode   = 0o700
	fileMode  = 0o600
)

// Store is an open, locked data directory. Its methods are safe for
// concurrent use.
type Store struct {
	dir string

	mu     sync.Mutex  // serialises writers: name.tmp is shared by Saves of name
	lock   *flock.Lock // held while open
	dirf   *os.File    // the directory, kept open to fsync it after each rename
	closed bool
}

// Open opens the data directory dir, creating it (mode 0700) if missing,
// locks it and removes temporary files left by an interrupted Save. It fails
// with ErrLocked if the directory is already open elsewhere.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: open: empty directory path")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: open %s: not a directory", dir)
	}
	lf, err := flock.TryLock(filepath.Join(dir, lockName))
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("store: open %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		_ = lf.Unlock()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{dir: dir, lock: lf, dirf: dirf}
	// Only after taking the lock: another agent's name.tmp is not ours to
	// remove, a crashed predecessor's is.
	if err := s.removeTemps(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the lock. Further calls on s fail with ErrClosed. The lock
// file itself stays: removing it would let two openers lock different files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	derr := s.dirf.Close()
	if err := s.lock.Unlock(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.dir, err)
	}
	if derr != nil {
		return fmt.Errorf("store: close %s: %w", s.dir, derr)
	}
	return nil
}

// Load reads the document name into v (a pointer, as for json.Unmarshal).
// It returns an error wrapping ErrNotFound if the document was never saved,
// and one wrapping ErrCorrupt (with the path) if the file is not a JSON
// object that decodes into v. On error v may have been partly written and
// must not be used.
func (s *Store) Load(name string, v any) error {
	path, data, err := s.read(name)
	if err != nil {
		return err
	}
	return decode(path, data, v)
}

// LoadVersioned is Load for a document following the version convention
// (see the package doc). It returns the document's version, which is
// between 1 and maxVersion; a document without a positive integer version
// is ErrCorrupt, one above maxVersion is ErrUnsupportedVersion and v is
// left untouched.
func (s *Store) LoadVersioned(name string, maxVersion int, v any) (int, error) {
	path, data, err := s.read(name)
	if err != nil {
		return 0, err
	}
	var hdr struct {
		Version *int `json:"version"`
	}
	if err := decode(path, data, &hdr); err != nil {
		return 0, err
	}
	switch {
	case hdr.Version == nil:
		return 0, fmt.Errorf("store: load %s: %w: no version field", path, ErrCorrupt)
	case *hdr.Version < 1:
		return 0, fmt.Errorf("store: load %s: %w: version %d", path, ErrCorrupt, *hdr.Version)
	case *hdr.Version > maxVersion:
		return *hdr.Version, fmt.Errorf("store: load %s: %w: version %d, this program understands up to %d",
			path, ErrUnsupportedVersion, *hdr.Version, maxVersion)
	}
	return *hdr.Version, decode(path, data, v)
}

// Save replaces the document name with v encoded as JSON; v must encode as
// a JSON object. When Save returns nil the new document is on stable
// storage. When it returns an error the document on disk is the previous
// one, or — only if the final directory fsync failed — possibly the new one
// without a durability guarantee.
func (s *Store) Save(name string, v any) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("store: save %q: %w", name, err)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("store: save %s: encode: %w", name, err)
	}
	if len(data) == 0 || data[0] != '{' {
		return fmt.Errorf("store: save %s: encode: value is not a JSON object", name)
	}
	data = append(data, '\n')
	if len(data) > MaxDocumentSize {
		return fmt.Errorf("store: save %s: %w: %d bytes, limit %d", name, ErrTooLarge, len(data), MaxDocumentSize)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("store: save %s: %w", name, ErrClosed)
	}
	path := filepath.Join(s.dir, name)
	tmp := path + tmpSuffix
	if err := writeSynced(tmp, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: save %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: save %s: %w", path, err)
	}
	// Without this the rename itself may be lost on power failure, and the
	// old document would come back after the new state was acted on.
	if err := s.dirf.Sync(); err != nil {
		return fmt.Errorf("store: save %s: sync directory: %w", path, err)
	}
	return nil
}

// Remove deletes the document name. Removing a document that does not
// exist is not an error.
func (s *Store) Remove(name string) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("store: remove %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("store: remove %s: %w", name, ErrClosed)
	}
	path := filepath.Join(s.dir, name)
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: remove %s: %w", path, err)
	}
	if err := s.dirf.Sync(); err != nil {
		return fmt.Errorf("store: remove %s: sync directory: %w", path, err)
	}
	return nil
}

// read returns the bytes of document name, bounded by MaxDocumentSize.
func (s *Store) read(name string) (string, []byte, error) {
	if err := validName(name); err != nil {
		return "", nil, fmt.Errorf("store: load %q: %w", name, err)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", nil, fmt.Errorf("store: load %s: %w", name, ErrClosed)
	}
	// No lock held while reading: rename is atomic, so a concurrent Save
	// shows either the old file or the new one.
	path := filepath.Join(s.dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return path, nil, fmt.Errorf("store: load %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return path, nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
	if err != nil {
		return path, nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	if len(data) > MaxDocumentSize {
		return path, nil, fmt.Errorf("store: load %s: %w: larger than %d bytes", path, ErrCorrupt, MaxDocumentSize)
	}
	return path, data, nil
}

// decode unmarshals a document. Anything that is not a JSON object decoding
// into v is ErrCorrupt; a top-level null in particular would otherwise
// leave v as it was and pass for a valid, empty state.
func decode(path string, data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("store: load %s: %w: not a JSON object", path, ErrCorrupt)
	}
	if err := json.Unmarshal(data, v); err != nil {
		var inv *json.InvalidUnmarshalError
		if errors.As(err, &inv) { // the caller's bug, not the file's
			return fmt.Errorf("store: load %s: %w", path, err)
		}
		return fmt.Errorf("store: load %s: %w: %v", path, ErrCorrupt, err)
	}
	return nil
}

// writeSynced writes data to a fresh file at path and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	return fsync.Write(f, data)
}

// removeTemps deletes name.tmp files left by a Save that never reached its
// rename. Only files whose stem is a valid document name are touched.
func (s *Store) removeTemps() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.dir, err)
	}
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), tmpSuffix)
		if !ok || !e.Type().IsRegular() || validName(stem) != nil {
			continue
		}
		p := filepath.Join(s.dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: open %s: remove stale %s: %w", s.dir, p, err)
		}
	}
	return nil
}

// validName accepts plain file names made of letters, digits, '-', '_' and
// '.', not starting with '.', not ending in ".tmp" (reserved for Save) and
// not the lock file's name.
func validName(name string) error {
	if name == "" || len(name) > maxName {
		return ErrInvalidName
	}
	if name[0] == '.' || name == lockName || strings.HasSuffix(name, tmpSuffix) {
		return ErrInvalidName
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return ErrInvalidName
		}
	}
	return nil
}
