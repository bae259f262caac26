package tufrepotest

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestPackageFile(t *testing.T) {
	p, data := PackageFile(t, "fw.bin", 3000)
	if filepath.Base(p) != "fw.bin" || len(data) != 3000 {
		t.Fatalf("PackageFile: path %q, %d bytes; want fw.bin, 3000 bytes", p, len(data))
	}
	if got := ReadFile(t, p); !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes that differ from the %d returned", len(got), len(data))
	}
	if _, other := PackageFile(t, "fw.bin", 3000); bytes.Equal(other, data) {
		t.Fatal("two package files have the same content")
	}
}
