//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"errors"
	"os"
)

// lockFile is not implemented here: running without the lock would let two
// agents corrupt each other's state, so Open refuses instead.
func lockFile(*os.File) error {
	return errors.ErrUnsupported
}
