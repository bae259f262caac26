package tufrepo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestInitLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Init(dir, InitOptions{Thresholds: Thresholds{Timestamp: 3}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1.root.json", "root.json", "1.targets.json", "targets.json", "1.snapshot.json", "snapshot.json", "timestamp.json"} {
		if _, err := os.Stat(filepath.Join(dir, metadataDir, name)); err != nil {
			t.Errorf("metadata %s: %v", name, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, keysDir))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("keys dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, keysDir))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key %s mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		count[strings.SplitN(e.Name(), "-", 2)[0]]++
	}
	want := map[string]int{RoleRoot: 1, RoleTargets: 1, RoleSnapshot: 1, RoleTimestamp: 3}
	for role, n := range want {
		if count[role] != n {
			t.Errorf("%d %s keys, want %d", count[role], role, n)
		}
	}
	root, err := loadRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !root.Signed.ConsistentSnapshot {
		t.Error("root does not use consistent snapshots")
	}
	if th := root.Signed.Roles[RoleTimestamp].Threshold; th != 3 {
		t.Errorf("timestamp threshold %d, want 3", th)
	}
	ts, err := loadOptional[metadata.TimestampType](filepath.Join(dir, metadataDir, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.Signatures) != 3 {
		t.Errorf("timestamp has %d signatures, want 3", len(ts.Signatures))
	}
	if err := Init(dir, InitOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
}

func TestInitRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts InitOptions
	}{
		{"negative threshold", InitOptions{Thresholds: Thresholds{Root: -1}}},
		{"huge threshold", InitOptions{Thresholds: Thresholds{Targets: 100}}},
		{"negative expiry", InitOptions{Expiries: Expiries{Timestamp: -time.Hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			if err := Init(dir, tt.opts); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Init: %v, want ErrInvalid", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("rejected Init left %s behind", dir)
			}
		})
	}
}

func TestInitExpiriesAreRemembered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := Init(dir, InitOptions{Expiries: Expiries{Timestamp: 2 * time.Hour, Targets: 10 * time.Hour}, Now: now}); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(dir, PublishOptions{Now: now, Expiries: Expiries{Snapshot: 3 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimestampExpires.Equal(now.Add(2*time.Hour)) || !res.TargetsExpires.Equal(now.Add(10*time.Hour)) || !res.SnapshotExpires.Equal(now.Add(3*time.Hour)) {
		t.Fatalf("expiries %+v", res)
	}
	if res.TargetsVersion != 2 || res.SnapshotVersion != 2 || res.TimestampVersion != 2 {
		t.Fatalf("versions %+v, want 2 each after Init and one Publish", res)
	}
}

func TestAddTargetCounters(t *testing.T) {
	f := newFixture(t, InitOptions{})
	file, _ := tufrepotest.PackageFile(t, "fw.bin", 10)
	tests := []struct {
		name        string
		model, ver  string
		opts        AddOptions
		wantCounter int64
		wantErr     error
	}{
		{"next of lamp-1", "lamp-1", "1.2.0", AddOptions{}, 3, nil},
		{"explicit counter jumps", "lamp-1", "2.0.0", AddOptions{Counter: 10}, 10, nil},
		{"after a jump", "lamp-1", "2.0.1", AddOptions{}, 11, nil},
		{"counter not above highest", "lamp-1", "2.0.2", AddOptions{Counter: 11}, 0, ErrInvalid},
		{"negative counter", "lamp-1", "2.0.3", AddOptions{Counter: -1}, 0, ErrInvalid},
		{"duplicate version", "lamp-1", "1.1.0", AddOptions{Name: "other.bin"}, 0, ErrExists},
		{"first of a new model", "fan-3", "1.1.0", AddOptions{}, 1, nil},
		{"model with slash", "lamp/1", "1.0", AddOptions{}, 0, ErrInvalid},
		{"dot-dot version", "lamp-1", "..", AddOptions{}, 0, ErrInvalid},
		{"space in model", "lamp 1", "1.0", AddOptions{}, 0, ErrInvalid},
		{"hidden name", "lamp-1", "3.0", AddOptions{Name: ".fw"}, 0, ErrInvalid},
		{"too long name", "lamp-1", "3.0", AddOptions{Name: strings.Repeat("a", 101)}, 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AddTarget(f.dir, file, tt.model, tt.ver, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AddTarget: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Counter != tt.wantCounter {
				t.Fatalf("counter %d, want %d", got.Counter, tt.wantCounter)
			}
		})
	}
}

func TestAddTargetMissingFile(t *testing.T) {
	f := newFixture(t, InitOptions{})
	if _, err := AddTarget(f.dir, filepath.Join(t.TempDir(), "nope.bin"), "lamp-1", "9.0", AddOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("AddTarget of a missing file: %v", err)
	}
	if _, err := AddTarget(f.dir, t.TempDir(), "lamp-1", "9.0", AddOptions{Name: "d.bin"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddTarget of a directory: %v", err)
	}
	// Nothing half-added: no staged set, no stray temporary files.
	if _, err := os.Stat(filepath.Join(f.dir, stagedFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed adds staged something: %v", err)
	}
	err := filepath.WalkDir(filepath.Join(f.dir, targetsDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNotARepository(t *testing.T) {
	dir := t.TempDir()
	file, _ := tufrepotest.PackageFile(t, "fw.bin", 10)
	checks := map[string]error{}
	_, checks["AddTarget"] = AddTarget(dir, file, "m", "1", AddOptions{})
	_, checks["Publish"] = Publish(dir, PublishOptions{})
	_, checks["RotateKey"] = RotateKey(dir, RoleRoot, RotateOptions{})
	_, checks["ListTargets"] = ListTargets(dir)
	_, checks["TrustedRoot"] = TrustedRoot(dir)
	_, checks["Publish missing dir"] = Publish(filepath.Join(dir, "none"), PublishOptions{})
	for name, err := range checks {
		if !errors.Is(err, ErrNotRepository) {
			t.Errorf("%s: %v, want ErrNotRepository", name, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("operations on a non-repository left %d files behind", len(entries))
	}
}

func TestListTargets(t *testing.T) {
	f := newFixture(t, InitOptions{})
	file, data := tufrepotest.PackageFile(t, "fw.bin", 42)
	if _, err := AddTarget(f.dir, file, "lamp-1", "1.2.0", AddOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := ListTargets(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		path      string
		counter   int64
		published bool
	}
	want := []row{
		{"lamp-1/1.0.0/firmware.bin", 1, true},
		{"lamp-1/1.1.0/firmware.bin", 2, true},
		{"lamp-1/1.2.0/fw.bin", 3, false},
		{"plug-2/0.9.0/firmware.bin", 1, true},
	}
	if len(list) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(list), len(want), list)
	}
	for i, w := range want {
		g := list[i]
		if g.Path != w.path || g.Counter != w.counter || g.Published != w.published {
			t.Errorf("target %d: %s counter %d published %v, want %+v", i, g.Path, g.Counter, g.Published, w)
		}
	}
	staged := list[2]
	if staged.Length != 42 || len(staged.Hashes["sha256"]) != 64 || len(staged.Hashes["sha512"]) != 128 {
		t.Fatalf("staged target %+v", staged)
	}
	onDisk := filepath.Join(f.dir, targetsDir, "lamp-1", "1.2.0", staged.Hashes["sha256"]+".fw.bin")
	if !equalBytes(tufrepotest.ReadFile(t, onDisk), data) {
		t.Fatal("stored package differs from the source")
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err = ListTargets(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range list {
		if !g.Published {
			t.Errorf("%s not published after Publish", g.Path)
		}
	}
}

func TestPublishNeedsThresholdOfKeys(t *testing.T) {
	f := newFixture(t, InitOptions{Thresholds: Thresholds{Targets: 2}})
	before := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json"))
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	// Take one targets key offline.
	id := root.Signed.Roles[RoleTargets].KeyIDs[0]
	if err := os.Rename(filepath.Join(f.dir, keysDir, keyFileName(RoleTargets, id)), filepath.Join(t.TempDir(), "offline.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(f.dir, PublishOptions{}); !errors.Is(err, ErrNotEnoughKeys) {
		t.Fatalf("Publish with 1 of 2 targets keys: %v, want ErrNotEnoughKeys", err)
	}
	if after := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json")); !equalBytes(before, after) {
		t.Fatal("a failed Publish changed timestamp.json")
	}
	if _, err := os.Stat(filepath.Join(f.dir, metadataDir, "3.targets.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed Publish wrote targets: %v", err)
	}
}

func TestRootKeysOffline(t *testing.T) {
	f := newFixture(t, InitOptions{})
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	id := root.Signed.Roles[RoleRoot].KeyIDs[0]
	if err := os.Rename(filepath.Join(f.dir, keysDir, keyFileName(RoleRoot, id)), filepath.Join(t.TempDir(), "root.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatalf("Publish without root keys: %v", err)
	}
	if _, err := RotateKey(f.dir, RoleTimestamp, RotateOptions{}); !errors.Is(err, ErrNotEnoughKeys) {
		t.Fatalf("RotateKey without root keys: %v, want ErrNotEnoughKeys", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, metadataDir, "2.root.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed rotation wrote a root")
	}
	kr, err := loadKeyring(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(kr.keys) != 3 {
		t.Fatalf("%d keys in keys/ after a failed rotation, want the 3 that were there", len(kr.keys))
	}
}

func TestRotateKeyRejects(t *testing.T) {
	f := newFixture(t, InitOptions{})
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	tsKey := root.Signed.Roles[RoleTimestamp].KeyIDs[0]
	kr, err := loadKeyring(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		role string
		opts RotateOptions
	}{
		{"unknown role", "mirror", RotateOptions{}},
		{"key of another role", RoleTargets, RotateOptions{OldKeyID: tsKey}},
		{"new key is the old key", RoleTimestamp, RotateOptions{NewKey: kr.keys[tsKey]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RotateKey(f.dir, tt.role, tt.opts); !errors.Is(err, ErrInvalid) {
				t.Fatalf("RotateKey: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k.pem")
	if err := WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, k); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v, want ErrExists", err)
	}
	got, err := ReadKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !got.Key.Equal(k.Key) {
		t.Fatal("key read back differs")
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("group-readable key: %v, want ErrKeyPermissions", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage key: %v, want ErrInvalid", err)
	}
}

func TestWritersAreSerialised(t *testing.T) {
	f := newFixture(t, InitOptions{})
	unlock, err := lockRepo(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Publish(f.dir, PublishOptions{})
	unlock()
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Publish while locked: %v, want ErrLocked", err)
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatalf("Publish after unlock: %v", err)
	}
}

func TestPublishRefusesMissingPackage(t *testing.T) {
	f := newFixture(t, InitOptions{})
	file, _ := tufrepotest.PackageFile(t, "fw.bin", 10)
	tg, err := AddTarget(f.dir, file, "lamp-1", "2.0", AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json"))
	p := filepath.Join(f.dir, targetsDir, "lamp-1", "2.0", tg.Hashes["sha512"]+".fw.bin")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(f.dir, PublishOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Publish with a package missing: %v, want ErrNotFound", err)
	}
	if after := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json")); !equalBytes(before, after) {
		t.Fatal("a refused Publish changed timestamp.json")
	}
}
