package sample

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

func TestNoise(t *testing.T) {
	a, _ := io.ReadAll(Noise(1000, 1))
	b, _ := io.ReadAll(Noise(1000, 1))
	c, _ := io.ReadAll(Noise(1000, 2))
	if len(a) != 1000 || !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatalf("noise: len %d, same seed equal %v, other seed differs %v", len(a), bytes.Equal(a, b), !bytes.Equal(a, c))
	}
}

func TestRepository(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	root, err := Repository(dir, t.TempDir(), "m", 64<<10, "1.0.0", "1.1.0")
	if err != nil || len(root) == 0 {
		t.Fatalf("Repository: %v", err)
	}
	targets, err := tufrepo.ListTargets(dir)
	if err != nil || len(targets) != 2 {
		t.Fatalf("targets %+v, %v", targets, err)
	}
	for _, tg := range targets {
		if !tg.Published || tg.Model != "m" || tg.Length < 64<<10 {
			t.Errorf("target %+v", tg)
		}
	}
}
