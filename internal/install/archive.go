package install

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Bounds on a package's contents, whatever its signed length: the archive
// is compressed, so its length says nothing about what it unpacks to.
const (
	DefaultMaxUnpackedBytes = 1 << 30 // 1 GiB
	DefaultMaxEntries       = 100_000
	maxNameLen              = 4096
)

// limits bound one extraction.
type limits struct {
	maxBytes   int64
	maxEntries int
	noSync     bool // fuzzing only: fsync per file makes each run disk-bound
}

// unpack extracts the tar or gzip-compressed tar read from src into root.
//
// Every entry is checked before anything is written: its name must be local
// (no absolute path, no ".."), its type a regular file, directory, symlink or
// hard link (no devices, FIFOs or sparse files), its declared size within
// what is left of lim.maxBytes, and a link's target must stay inside the
// tree. Writes go through os.Root, so even a symlink planted by an earlier
// entry cannot lead a later one outside; at the end every symlink must
// resolve, inside root, to something that exists. Set-id bits and owners
// are dropped.
//
// Errors wrap ErrBadPackage when the archive is at fault; I/O trouble on
// the device (disk full, read error) is returned as is.
func unpack(ctx context.Context, src io.Reader, root *os.Root, lim limits, afterEntry func(name string)) error {
	// Remember read errors of the source: archive/tar reports them as its
	// own, and a failing disk is not a bad package.
	sr := &sourceReader{ctx: ctx, r: src}
	br := bufio.NewReaderSize(sr, 64<<10)
	var r io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return sr.blame(badf("gzip: %v", err))
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var total int64
	var symlinks []string
	for entries := 0; ; entries++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if entries == 0 {
				return sr.blame(badf("empty archive"))
			}
			break
		}
		if err != nil {
			return sr.blame(badf("read archive: %v", err))
		}
		if entries >= lim.maxEntries {
			return badf("more than %d entries", lim.maxEntries)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // metadata only (git archive writes one); no file
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" { // the root directory itself
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, dirPerm(hdr.Mode))
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > lim.maxBytes-total {
				return badf("entry %q declares %d bytes, more than the %d left of the %d-byte bound",
					hdr.Name, hdr.Size, lim.maxBytes-total, lim.maxBytes)
			}
			total += hdr.Size
			err = writeFile(root, name, hdr, tr, !lim.noSync)
		case tar.TypeSymlink:
			if err := checkLinkTarget(name, hdr.Linkname, true); err != nil {
				return err
			}
			if err = mkParent(root, name); err == nil {
				err = root.Symlink(hdr.Linkname, name)
			}
			symlinks = append(symlinks, name)
		case tar.TypeLink:
			err = hardLink(root, name, hdr.Linkname)
		default:
			return badf("entry %q has type %q: only files, directories and links are allowed",
				hdr.Name, string(hdr.Typeflag))
		}
		if err != nil {
			return entryError(hdr.Name, sr.blame(err))
		}
		if afterEntry != nil {
			afterEntry(name)
		}
	}
	for _, name := range symlinks {
		f, err := root.Open(name)
		if err != nil {
			target, _ := root.Readlink(name)
			return badf("symlink %q → %q does not resolve inside the package: %v", name, target, err)
		}
		_ = f.Close()
	}
	return nil
}

// entryName cleans a tar entry name; "" means the archive's root directory.
func entryName(n string) (string, error) {
	if len(n) > maxNameLen {
		return "", badf("entry name of %d bytes", len(n))
	}
	if strings.ContainsRune(n, 0) {
		return "", badf("entry name %q contains NUL", n)
	}
	clean := path.Clean(n)
	if clean == "." {
		return "", nil
	}
	if !filepath.IsLocal(clean) {
		return "", badf("entry %q escapes the slot (absolute or ..)", n)
	}
	return clean, nil
}

// checkLinkTarget refuses link targets that leave the tree lexically. For a
// symlink the target is relative to the link's directory; for a hard link to
// the archive root. The final check after extraction catches what lexical
// analysis cannot (a symlink through another symlink).
func checkLinkTarget(name, target string, symlink bool) error {
	kind := "hard link"
	if symlink {
		kind = "symlink"
	}
	if target == "" || len(target) > maxNameLen || strings.ContainsRune(target, 0) {
		return badf("%s %q has an invalid target", kind, name)
	}
	if path.IsAbs(target) {
		return badf("%s %q points to the absolute path %q", kind, name, target)
	}
	resolved := target
	if symlink {
		resolved = path.Join(path.Dir(name), target)
	}
	if !filepath.IsLocal(resolved) {
		return badf("%s %q → %q escapes the slot", kind, name, target)
	}
	return nil
}

// hardLink links name to an earlier regular file of the archive.
func hardLink(root *os.Root, name, target string) error {
	if err := checkLinkTarget(name, target, false); err != nil {
		return err
	}
	target = path.Clean(target)
	fi, err := root.Lstat(target)
	if err != nil {
		return badf("hard link %q → %q: target is not in the package before it: %v", name, target, err)
	}
	if !fi.Mode().IsRegular() {
		return badf("hard link %q → %q: target is not a regular file", name, target)
	}
	if err := mkParent(root, name); err != nil {
		return err
	}
	return root.Link(target, name)
}

// writeFile creates name (it must not exist yet: a duplicate entry could
// otherwise rewrite a file through a symlink) and copies exactly the
// declared size into it, durably.
func writeFile(root *os.Root, name string, hdr *tar.Header, r io.Reader, sync bool) error {
	if err := mkParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm(hdr.Mode))
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != hdr.Size {
		err = badf("entry %q is truncated: %d of %d bytes", hdr.Name, n, hdr.Size)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func mkParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		return root.MkdirAll(dir, 0o755)
	}
	return nil
}

// filePerm keeps the permission bits only: no set-id, no sticky bit.
func filePerm(mode int64) fs.FileMode { return fs.FileMode(mode) & 0o777 }

// dirPerm also keeps the directory writable and searchable by its owner, so
// that later entries can go into it and the slot can be removed.
func dirPerm(mode int64) fs.FileMode { return fs.FileMode(mode)&0o777 | 0o700 }

// entryError attributes a failed file system operation: the device's fault
// stays as is, anything else is the archive's.
func entryError(name string, err error) error {
	if errors.Is(err, ErrBadPackage) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || isIOError(err) {
		return fmt.Errorf("unpack %q: %w", name, err)
	}
	return badf("entry %q: %v", name, err)
}

// sourceReader reads the package, checks ctx between reads, and keeps the
// first read error so that it is not mistaken for a malformed archive.
type sourceReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// blame returns the source's read error, if any, instead of err.
func (s *sourceReader) blame(err error) error {
	if s.err != nil {
		return fmt.Errorf("read package: %w", s.err)
	}
	return err
}
