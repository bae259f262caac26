//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package flock

import (
	"errors"
	"os"
)

// Without flock the callers refuse to run rather than run unprotected.
func lock(*os.File) error   { return errors.ErrUnsupported }
func unlock(*os.File) error { return nil }
