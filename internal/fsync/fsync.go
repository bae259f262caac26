// Package fsync makes file system changes survive a crash or a power loss:
// the data of a file written before it is renamed into place, and the
// directory entry that a create, rename, link or removal changed. A
// rename alone is atomic but not durable: without the directory's fsync
// the old name may come back after a power loss, and without the file's
// fsync the new name may point at empty or partial content.
package fsync

import (
	"fmt"
	"os"
)

// Dir makes the directory entries of dir (creations, renames, links,
// removals) durable. An empty dir is the working directory, as
// filepath.Split returns it for a bare file name.
func Dir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// Write writes data to f, flushes it to the device and closes f. f is
// closed whatever fails; the error is the first failure's, unwrapped, so
// that the caller names the file in its own terms.
func Write(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
