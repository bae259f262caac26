package tufrepo

import (
	"encoding/json"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// targetsOf builds targets metadata from path → custom JSON ("" for none).
func targetsOf(entries map[string]string) *metadata.Metadata[metadata.TargetsType] {
	tg := metadata.Targets()
	for p, custom := range entries {
		tf := &metadata.TargetFiles{Length: 1, Hashes: metadata.Hashes{"sha256": []byte{1}}, Path: p}
		if custom != "" {
			raw := json.RawMessage(custom)
			tf.Custom = &raw
		}
		tg.Signed.Targets[p] = tf
	}
	return tg
}

func TestSelectTarget(t *testing.T) {
	tg := targetsOf(map[string]string{
		"a/1.0.0/f":  `{"model":"a","version":"1.0.0","counter":1}`,
		"a/1.2.0/f":  `{"model":"a","version":"1.2.0","counter":2}`,
		"a/1.10.0/f": `{"model":"a","version":"1.10.0","counter":3}`,
		"a/odd/f":    `{"model":"a","version":"nightly-7","counter":4}`,
		"b/2/f":      `{"model":"b","version":"2","counter":1}`,
		"c/x/f":      `{"model":"c","version":"2.0.0-rc.1","counter":1}`,
		"c/y/f":      `{"model":"c","version":"2.0.0","counter":2}`,
		"plain.txt":  ``,
		"bad/json":   `{"model":`,
		"bad/zero":   `{"model":"a","version":"9","counter":0}`,
		"tie/1":      `{"model":"t","version":"1","counter":5}`,
		"tie/0":      `{"model":"t","version":"2","counter":5}`,
	})
	tests := []struct {
		name      string
		model     string
		installed Installed
		wantPath  string // "" = none
	}{
		{"highest counter wins", "a", Installed{}, "a/odd/f"},
		{"counter floor", "a", Installed{Counter: 3}, "a/odd/f"},
		{"counter at top", "a", Installed{Counter: 4}, ""},
		{"counter above top (downgrade never offered)", "a", Installed{Counter: 99}, ""},
		{"version maps to counter", "a", Installed{Version: "1.10.0"}, "a/odd/f"},
		{"counter beats version", "a", Installed{Counter: 4, Version: "1.0.0"}, ""},
		// 0.9 is not in the repository: only versions that compare above
		// it qualify, and "nightly-7" does not compare.
		{"unknown version: semver fallback", "a", Installed{Version: "0.9"}, "a/1.10.0/f"},
		{"unknown version above all", "a", Installed{Version: "v5.0.0"}, ""},
		{"unparsable installed version", "a", Installed{Version: "build 42"}, ""},
		{"pre-release below release", "c", Installed{Version: "2.0.0-beta"}, "c/y/f"},
		{"other model only", "b", Installed{Version: "1"}, "b/2/f"},
		{"tie broken by path", "t", Installed{}, "tie/0"},
		{"no such model", "z", Installed{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, found, err := SelectTarget(tg, tt.model, tt.installed)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPath == "" {
				if found {
					t.Fatalf("selected %s, want none", sel.Path)
				}
				return
			}
			if !found || sel.Path != tt.wantPath {
				t.Fatalf("selected %q (found=%v), want %q", sel.Path, found, tt.wantPath)
			}
			if sel.File != tg.Signed.Targets[tt.wantPath] || sel.Custom.Model != tt.model {
				t.Fatalf("selection %+v does not describe %s", sel, tt.wantPath)
			}
		})
	}
}

func TestSelectTargetBadInput(t *testing.T) {
	if _, _, err := SelectTarget(nil, "a", Installed{}); err == nil {
		t.Error("nil metadata accepted")
	}
	if _, _, err := SelectTarget(metadata.Targets(), "", Installed{}); err == nil {
		t.Error("empty model accepted")
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1.0.0", "1.0.0", 0, true},
		{"1.2", "1.2.0", 0, true},
		{"v1.2.3", "1.2.3", 0, true},
		{"1.2.3+build.5", "1.2.3", 0, true},
		{"1.10.0", "1.9.0", 1, true},
		{"2", "10", -1, true},
		{"1.0.0-alpha", "1.0.0", -1, true},
		// The precedence example of semver.org §11.
		{"1.0.0-alpha", "1.0.0-alpha.1", -1, true},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1, true},
		{"1.0.0-alpha.beta", "1.0.0-beta", -1, true},
		{"1.0.0-beta", "1.0.0-beta.2", -1, true},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1, true},
		{"1.0.0-beta.11", "1.0.0-rc.1", -1, true},
		{"1.0.0-rc.1", "1.0.0", -1, true},
		{"1.0.0", "1.0.0-rc.1", 1, true},
		{"1.2.3.4", "1.0", 0, false},
		{"01.0", "1.0", 0, false},
		{"1.0-", "1.0", 0, false},
		{"1.0-a..b", "1.0", 0, false},
		{"1.0-01", "1.0", 0, false},
		{"", "1", 0, false},
		{"nightly", "1", 0, false},
		{"1.x", "1", 0, false},
		{"99999999999999999999", "1", 0, false},
	}
	for _, tt := range tests {
		got, ok := CompareVersions(tt.a, tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
		if ok {
			if rev, _ := CompareVersions(tt.b, tt.a); rev != -got {
				t.Errorf("CompareVersions(%q, %q) = %d, not the opposite of %d", tt.b, tt.a, rev, got)
			}
		}
	}
}

func TestInstalledCounter(t *testing.T) {
	tg := targetsOf(map[string]string{
		"a/1/f": `{"model":"a","version":"1.0","counter":4}`,
		"b/1/f": `{"model":"b","version":"1.0","counter":9}`,
	})
	if c, ok := InstalledCounter(tg, "a", "1.0"); !ok || c != 4 {
		t.Errorf("InstalledCounter(a, 1.0) = %d, %v; want 4, true", c, ok)
	}
	if _, ok := InstalledCounter(tg, "a", "1.0.0"); ok {
		t.Error("versions are matched exactly, not by precedence")
	}
	if _, ok := InstalledCounter(nil, "a", "1.0"); ok {
		t.Error("nil metadata gave a counter")
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"1.0.0", "v2.3", "1.0.0-rc.1+b", "1.0-", "0.0.0-0.a-b"} {
		f.Add(s, "1.0.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		c, ok := CompareVersions(a, b)
		r, rok := CompareVersions(b, a)
		if ok != rok || (ok && c != -r) {
			t.Fatalf("asymmetric: (%q,%q)=%d,%v but reversed %d,%v", a, b, c, ok, r, rok)
		}
		if self, sok := CompareVersions(a, a); sok && self != 0 {
			t.Fatalf("%q does not equal itself", a)
		}
	})
}
