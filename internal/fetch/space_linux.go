//go:build linux

package fetch

import (
	"fmt"
	"syscall"
)

// freeSpace returns the bytes an unprivileged process may still write in
// dir's file system (f_bavail, not f_bfree: the root reserve is not ours).
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil //nolint:gosec // block counts fit in int64
}
