package install

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Sentinel errors of the package, matched with errors.Is. A failed install or
// confirmation is returned as a *step.Error that carries the swupdateresult;
// these sentinels are wrapped inside it where they apply.
var (
	// ErrBadPackage: the package is malformed or unsafe (a path escaping the
	// slot, a device file, a size beyond the bounds, a missing or wrong
	// manifest). Result 5.
	ErrBadPackage = errors.New("malformed or unsafe package")
	// ErrBusy: another Install, Confirm or Launch holds the installer's
	// lock, in this process or another one using the same directory.
	ErrBusy = errors.New("another install or confirmation is running")
	// ErrPending: an installed version awaits confirmation; Confirm must run
	// before another Install.
	ErrPending = errors.New("an installed version awaits confirmation")
)

// badf builds an error wrapping ErrBadPackage.
func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPackage, fmt.Sprintf(format, args...))
}

// failure builds the *step.Error for result r.
func failure(r swu.Result, err error, format string, args ...any) *step.Error {
	return &step.Error{Result: r, Detail: fmt.Sprintf(format, args...), Err: err}
}

// resultOf maps an error from unpacking or staging to a swupdateresult: a bad
// package is a validation failure, a full disk is "not enough flash", and any
// other trouble is "update failed".
func resultOf(err error) swu.Result {
	switch {
	case errors.Is(err, ErrBadPackage):
		return swu.ResultValidation
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return swu.ResultNoFlash
	default:
		return swu.ResultUpdateFailed
	}
}

// isIOError reports whether err from a file system operation on our own
// staging directory is the device's fault (disk full, read-only, I/O error)
// rather than the package's. Everything else there — EEXIST for a duplicate
// entry, ENOTDIR for a file used as a directory, ELOOP, a path escaping the
// root — can only come from the archive's contents.
func isIOError(err error) bool {
	for _, e := range []syscall.Errno{
		syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS,
		syscall.EACCES, syscall.EPERM, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
