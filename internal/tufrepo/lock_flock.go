//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tufrepo

import (
	"errors"
	"os"
	"syscall"
)

// flockFile takes an exclusive, non-blocking flock on f. The kernel drops it
// when the holder dies, however it dies, so a crash never leaves a stale lock.
func flockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return ErrLocked
		default:
			return err
		}
	}
}
