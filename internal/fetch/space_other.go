//go:build !linux

package fetch

import "errors"

// freeSpace is unknown off Linux; Download then skips the check.
func freeSpace(string) (int64, error) {
	return 0, errors.New("free space check not supported on this system")
}
