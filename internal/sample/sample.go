// Package sample makes signed repositories of throwaway packages: the demo
// runs on them, and so do the end-to-end tests and benchmarks. Package
// contents are pseudo-random so that a package of N bytes really is about N
// bytes after compression.
package sample

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// Noise returns a reader of n pseudo-random bytes that holds none of them.
func Noise(n int64, seed uint64) io.Reader { return &noise{n: n, x: seed} }

type noise struct {
	n, off int64
	x      uint64
}

func (p *noise) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		p.x = p.x*6364136223846793005 + 1442695040888963407 // LCG (Knuth's MMIX)
		b[i] = byte(p.x >> 56)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// WritePackage writes a slots package (gzip-compressed tar with
// ocfupdate.json) for model and version to path, with size bytes of
// firmware.
func WritePackage(path, model, version string, size int64) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("package: %w", err)
	}
	err = install.WritePackage(out, install.Manifest{Version: version, Model: model},
		install.PackageFile{Name: "firmware.bin", Mode: 0o644, Size: size, Data: Noise(size, uint64(len(version)))})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("package: %w", cerr)
	}
	return err
}

// Repository initialises a TUF repository in dir, adds a package of size
// bytes per version for model (built in pkgDir), publishes it and returns
// its root.json, the trust root for devices.
func Repository(dir, pkgDir, model string, size int64, versions ...string) ([]byte, error) {
	if err := tufrepo.Init(dir, tufrepo.InitOptions{}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		return nil, fmt.Errorf("packages: %w", err)
	}
	for _, v := range versions {
		if err := Add(dir, pkgDir, model, v, size); err != nil {
			return nil, err
		}
	}
	if _, err := tufrepo.Publish(dir, tufrepo.PublishOptions{}); err != nil {
		return nil, err
	}
	return tufrepo.TrustedRoot(dir)
}

// Add builds a package in pkgDir and stages it in the repository at dir
// (publish to make it visible).
func Add(dir, pkgDir, model, version string, size int64) error {
	p := filepath.Join(pkgDir, model+"-"+version+".tar.gz")
	if err := WritePackage(p, model, version, size); err != nil {
		return err
	}
	if _, err := tufrepo.AddTarget(dir, p, model, version, tufrepo.AddOptions{}); err != nil {
		return err
	}
	return nil
}
