// Package flock is an exclusive, non-blocking advisory lock on a file, for
// directories that one process at a time may write: the agent's data dir,
// the installer's slots, a TUF repository. The kernel drops the lock when
// its holder dies, however it dies, so a crash never leaves a stale lock.
package flock

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held lock.
type Lock struct{ f *os.File }

// TryLock creates path if needed (mode 0600) and takes the lock, or fails
// at once with an error wrapping ErrLocked. flock belongs to the open file
// description, so a second TryLock in the same process conflicts too.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := lock(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock explicitly before closing the file. Closing
// alone is not enough: a child process forked at that moment shares the
// descriptor until it execs, and would keep the lock until then.
func (l *Lock) Unlock() error {
	uerr := unlock(l.f)
	cerr := l.f.Close()
	return errors.Join(uerr, cerr)
}
