package install

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack: whatever the archive, unpack never panics, never writes
// outside its root, blames the archive (not the device) for every refusal,
// and leaves only symlinks that resolve inside.
func FuzzUnpack(f *testing.F) {
	seeds := [][]entry{
		goodEntries("1.0.0"),
		{{name: "../evil", body: "x"}},
		{{name: "q", typ: tar.TypeSymlink, link: "."}, {name: "p", typ: tar.TypeSymlink, link: "q/.."}, {name: "p/x", body: "x"}},
		{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
		{{name: "d/", typ: tar.TypeDir, mode: 0}, {name: "d/f", body: "x", mode: 0}, {name: "d/h", typ: tar.TypeLink, link: "d/f"}},
	}
	for _, s := range seeds {
		f.Add(buildTar(f, s, false))
		f.Add(buildTar(f, s, true))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		base := t.TempDir()
		dir := filepath.Join(base, "root")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		err = unpack(context.Background(), bytes.NewReader(b), root, limits{maxBytes: 1 << 20, maxEntries: 100, noSync: true}, nil)
		if err != nil && !errors.Is(err, ErrBadPackage) {
			t.Fatalf("unpack blamed the device: %v", err)
		}
		if ents, err := os.ReadDir(base); err != nil || len(ents) != 1 {
			t.Fatalf("something was written next to the root: %v %v", ents, err)
		}
		if err != nil {
			return
		}
		_ = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSymlink != 0 {
				if f, err := root.Open(name); err != nil {
					t.Errorf("symlink %s does not resolve inside: %v", name, err)
				} else {
					_ = f.Close()
				}
			}
			return nil
		})
	})
}
