package tufrepo

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ocfupdate/ocfupdate/internal/flock"
	"github.com/ocfupdate/ocfupdate/internal/fsync"
)

// Names inside DIR. Everything under repositoryDir is public; nothing else is.
const (
	repositoryDir = "repository"
	metadataDir   = "repository/metadata"
	targetsDir    = "repository/targets"
	keysDir       = "keys"
	retiredDir    = "keys/retired"
	stagedDir     = "staged"
	stagedFile    = "staged/targets.json"
	settingsFile  = "repo.json"
	lockFileName  = ".lock"
	tlsDir        = "tls"
)

// lockRepo takes the writer lock of the repository in dir. The returned
// func releases it. It fails with ErrNotRepository, without creating the
// lock file, when dir holds no repository.
func lockRepo(dir string) (func(), error) {
	if _, err := os.Stat(filepath.Join(dir, metadataDir, "root.json")); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, ErrNotRepository)
	}
	return lockDir(dir)
}

// lockDir takes the writer lock in dir, creating the lock file.
func lockDir(dir string) (func(), error) {
	l, err := flock.TryLock(filepath.Join(dir, lockFileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("lock %s: %w", dir, ErrNotRepository)
	case errors.Is(err, flock.ErrLocked):
		return nil, fmt.Errorf("lock %s: %w", dir, ErrLocked)
	case err != nil:
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}

// writeFileAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory. Readers see the old or the new
// content, never a mix, and a crash leaves one of the two.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic is writeFileAtomic with the content produced by fill.
func writeAtomic(path string, perm fs.FileMode, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fsync.Dir(dir)
}

// fileDigest is what TUF records about a target file.
type fileDigest struct {
	length int64
	sha256 []byte
	sha512 []byte
}

// copyHashed copies src to dstDir under a temporary name while hashing it,
// and returns the temporary path with the digest. The caller renames the file
// into place once it knows the hash-derived name.
func copyHashed(src, dstDir string) (tmpPath string, d fileDigest, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", d, fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", d, fmt.Errorf("stat %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return "", d, fmt.Errorf("%s is not a regular file: %w", src, ErrInvalid)
	}
	tmp, err := os.CreateTemp(dstDir, ".add-*")
	if err != nil {
		return "", d, fmt.Errorf("copy %s: %w", src, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(tmp, h256, h512), in)
	if err != nil {
		return "", d, fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", d, fmt.Errorf("copy %s: %w", src, err)
	}
	if err := tmp.Sync(); err != nil {
		return "", d, fmt.Errorf("copy %s: sync: %w", src, err)
	}
	if err := tmp.Close(); err != nil {
		return "", d, fmt.Errorf("copy %s: close: %w", src, err)
	}
	return tmp.Name(), fileDigest{length: n, sha256: h256.Sum(nil), sha512: h512.Sum(nil)}, nil
}

// linkOrCopy makes dst a second name for src: a hard link where the file
// system has them, otherwise an atomic copy.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errors.Is(err, fs.ErrExist) {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	return writeAtomic(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func sha256Sum(data []byte) []byte {
	h := sha256.Sum256(data)
	return h[:]
}
