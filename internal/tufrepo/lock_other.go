//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package tufrepo

import (
	"errors"
	"os"
)

// flockFile is not implemented here: two writers at once could publish
// metadata that references each other's half-finished work, so writers
// refuse instead.
func flockFile(*os.File) error {
	return errors.ErrUnsupported
}
