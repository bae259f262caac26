package fsync

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		dir     string
		wantErr error
	}{
		{name: "directory", dir: dir},
		{name: "empty is the working directory", dir: ""},
		{name: "missing", dir: missing, wantErr: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Dir(tt.dir)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Dir(%q) = %v, want %v", tt.dir, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "sync dir "+tt.dir) {
				t.Errorf("error %q does not name the directory", err)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	t.Run("writes and closes", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, []byte("state")); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "state" {
			t.Fatalf("file holds %q (%v), want %q", b, err, "state")
		}
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("second Close = %v, want os.ErrClosed: Write did not close f", err)
		}
	})
	t.Run("failed write closes", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p) // read-only: the write fails
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, []byte("x")); err == nil {
			t.Fatal("Write to a read-only file succeeded")
		}
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Close after a failed Write = %v, want os.ErrClosed", err)
		}
	})
}
