package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
)

// PackageFile is one file of a package being built.
type PackageFile struct {
	Name string    // slash-separated, relative
	Mode int64     // e.g. 0o644, 0o755
	Size int64     // bytes Data yields
	Data io.Reader // streamed, so a large package needs no memory
}

// WritePackage writes a slots package to w: a gzip-compressed tar with
// ocfupdate.json (m) at its root, then files. It is the inverse of what
// Install unpacks; vendors and the demo build packages with it.
func WritePackage(w io.Writer, m Manifest, files ...PackageFile) error {
	zw := gzip.NewWriter(w)
	if err := WriteTar(zw, m, files...); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	return nil
}

// WriteTar writes the same package as an uncompressed tar, for contents
// that do not compress (already compressed images) or very large ones.
func WriteTar(w io.Writer, m Manifest, files ...PackageFile) error {
	tw := tar.NewWriter(w)
	manifest, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("package manifest: %w", err)
	}
	if err := writeEntry(tw, ManifestName, 0o644, int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeEntry(tw, f.Name, f.Mode, f.Size, f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, name string, mode, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("package %s: %w", name, err)
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return fmt.Errorf("package %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("package %s: %d bytes, declared %d", name, n, size)
	}
	return nil
}
