// Package tufrepotest has file helpers for tests that build TUF
// repositories, through internal/tufrepo or the `ocfupdate repo` commands:
// package files of random content to add, and reading back what was
// written. It does not import tufrepo, so tufrepo's own tests can use it.
package tufrepotest

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// PackageFile writes n random bytes to a file named name in a new
// temporary directory and returns its path and content. Random content
// makes every package distinct, so no test passes by matching the wrong
// one.
func PackageFile(t testing.TB, name string, n int) (path string, data []byte) {
	t.Helper()
	data = make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// ReadFile returns the content of the file at path, or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
