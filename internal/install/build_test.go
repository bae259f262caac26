package install

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/step"
)

// TestWritePackageInstalls: a package built by WritePackage installs.
func TestWritePackageInstalls(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	data := "hello 1.1.0"
	if err := WritePackage(&buf, Manifest{Version: "1.1.0", Model: "m"},
		PackageFile{Name: "share/greeting", Mode: 0o644, Size: int64(len(data)), Data: strings.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "pkg")
	if err := os.WriteFile(pkg, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSlots(SlotsConfig{Dir: filepath.Join(dir, "slots"), Model: "m", FactoryVersion: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	tgt := step.Target{Version: "1.1.0", Length: int64(buf.Len())}
	if err := s.Install(context.Background(), pkg, tgt, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Confirm(context.Background(), tgt); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "slots", "current", "share", "greeting"))
	if err != nil || string(got) != data {
		t.Fatalf("installed file %q, %v", got, err)
	}
	if v, _ := s.ActiveVersion(); v != "1.1.0" {
		t.Errorf("active %q", v)
	}
	if err := WritePackage(&bytes.Buffer{}, Manifest{Version: "1"}, PackageFile{Name: "x", Size: 5, Data: strings.NewReader("abc")}); err == nil {
		t.Error("short file data accepted")
	}
}
