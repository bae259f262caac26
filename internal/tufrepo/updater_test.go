package tufrepo

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// The go-tuf updater, unmodified, is the judge of every repository here.

func TestUpdaterFindsAndVerifiesNewestTarget(t *testing.T) {
	f := newFixture(t, InitOptions{})
	tests := []struct {
		name        string
		model       string
		installed   Installed
		wantVersion string // "" = nothing to install
	}{
		{"factory image by version", "lamp-1", Installed{Version: "1.0.0"}, "1.1.0"},
		{"counter of 1.0.0", "lamp-1", Installed{Counter: 1}, "1.1.0"},
		{"nothing installed", "lamp-1", Installed{}, "1.1.0"},
		{"up to date", "lamp-1", Installed{Counter: 2}, ""},
		{"other model", "plug-2", Installed{Version: "0.1"}, "0.9.0"},
		{"unknown model", "fan-9", Installed{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newClient(t, f.dir, f.root)
			if err := up.Refresh(); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			sel, found, err := SelectTarget(trustedTargets(t, up), tt.model, tt.installed)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantVersion == "" {
				if found {
					t.Fatalf("selected %s, want nothing", sel.Path)
				}
				return
			}
			if !found || sel.Custom.Version != tt.wantVersion || sel.Custom.Model != tt.model {
				t.Fatalf("selected %+v found=%v, want %s %s", sel.Custom, found, tt.model, tt.wantVersion)
			}
			info, err := up.GetTargetInfo(sel.Path)
			if err != nil {
				t.Fatalf("GetTargetInfo(%s): %v", sel.Path, err)
			}
			_, data, err := up.DownloadTarget(info, "", "")
			if err != nil {
				t.Fatalf("DownloadTarget: %v", err)
			}
			var want []byte
			for _, p := range f.pkgs {
				if p.model == tt.model && p.version == tt.wantVersion {
					want = p.data
				}
			}
			if !equalBytes(data, want) {
				t.Fatalf("downloaded %d bytes that differ from the package (%d bytes)", len(data), len(want))
			}
		})
	}
}

func TestUpdaterRejectsTamperedTarget(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(data []byte) []byte
	}{
		{"one bit flipped", func(d []byte) []byte { d = slices.Clone(d); d[len(d)/2] ^= 1; return d }},
		{"truncated", func(d []byte) []byte { return d[:len(d)-1] }},
		{"extended", func(d []byte) []byte { return append(slices.Clone(d), 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, InitOptions{})
			up := newClient(t, f.dir, f.root)
			sel, found, err := SelectTarget(refreshed(t, up), "plug-2", Installed{})
			if err != nil || !found {
				t.Fatalf("select: %v %v", found, err)
			}
			// Both hash-named files: the updater may ask for either.
			for _, alg := range []string{"sha256", "sha512"} {
				p := targetFilePath(f.dir, sel.Path, sel.File.Hashes[alg])
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, tt.tamper(f.pkgs[2].data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err = up.DownloadTarget(sel.File, "", "")
			if err == nil {
				t.Fatal("tampered target downloaded without error")
			}
			if !errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) && !errors.Is(err, &metadata.ErrDownloadLengthMismatch{}) {
				t.Fatalf("error %v (%T), want a length or hash mismatch", err, err)
			}
		})
	}
}

func TestUpdaterRejectsExpiredTimestamp(t *testing.T) {
	f := newFixture(t, InitOptions{})
	// Signed two days ago with the default one-day timestamp expiry.
	if _, err := Publish(f.dir, PublishOptions{Now: time.Now().Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	up := newClient(t, f.dir, f.root)
	err := up.Refresh()
	if !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Fatalf("Refresh: %v, want expired metadata", err)
	}

	// A fresh publish recovers.
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := newClient(t, f.dir, f.root).Refresh(); err != nil {
		t.Fatalf("Refresh after re-publish: %v", err)
	}
}

func TestUpdaterSeesOnlyPublishedTargets(t *testing.T) {
	f := newFixture(t, InitOptions{})
	file, _ := tufrepotest.PackageFile(t, "firmware.bin", 100)
	if _, err := AddTarget(f.dir, file, "lamp-1", "2.0.0", AddOptions{}); err != nil {
		t.Fatal(err)
	}
	sel, _, _ := SelectTarget(refreshed(t, newClient(t, f.dir, f.root)), "lamp-1", Installed{})
	if sel.Custom.Version != "1.1.0" {
		t.Fatalf("before publish: selected %s, want 1.1.0 (2.0.0 is only staged)", sel.Custom.Version)
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	sel, _, _ = SelectTarget(refreshed(t, newClient(t, f.dir, f.root)), "lamp-1", Installed{})
	if sel.Custom.Version != "2.0.0" || sel.Custom.Counter != 3 {
		t.Fatalf("after publish: selected %+v, want 2.0.0 counter 3", sel.Custom)
	}
}

func TestRotationClientFollowsChain(t *testing.T) {
	tests := []struct {
		name  string
		init  InitOptions
		roles []string
	}{
		{"root", InitOptions{}, []string{RoleRoot}},
		{"timestamp", InitOptions{}, []string{RoleTimestamp}},
		{"every role", InitOptions{}, []string{RoleTargets, RoleSnapshot, RoleTimestamp, RoleRoot}},
		{"root twice", InitOptions{}, []string{RoleRoot, RoleRoot}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.init)
			// A device that checked before the rotation: its cache holds
			// root 1 and the timestamp, snapshot and targets signed then.
			srv := httptest.NewTLSServer(NewHandler(f.dir))
			defer srv.Close()
			cache := t.TempDir()
			refreshed(t, newUpdaterIn(t, srv.URL, srv.Client(), f.root, cache))

			var last RotateResult
			for _, role := range tt.roles {
				res, err := RotateKey(f.dir, role, RotateOptions{})
				if err != nil {
					t.Fatalf("RotateKey(%s): %v", role, err)
				}
				if res.OldKeyID == res.NewKeyID || res.NewKeyID == "" {
					t.Fatalf("rotation result %+v", res)
				}
				if _, err := os.Stat(filepath.Join(f.dir, retiredDir, keyFileName(role, res.OldKeyID))); err != nil {
					t.Fatalf("old key not retired: %v", err)
				}
				last = res
			}
			wantRoot := int64(1 + len(tt.roles))
			if last.RootVersion != wantRoot {
				t.Fatalf("root version %d, want %d", last.RootVersion, wantRoot)
			}

			// The device starts its next check from what it persisted; its
			// cached timestamp may be signed by a key that is now revoked.
			cachedRoot := tufrepotest.ReadFile(t, filepath.Join(cache, "root.json"))
			if err := newUpdaterIn(t, srv.URL, srv.Client(), cachedRoot, cache).Refresh(); err != nil {
				t.Fatalf("client with cached metadata: Refresh: %v", err)
			}
			// A client holding only root 1 follows the chain too.
			up := newClient(t, f.dir, f.root)
			tg := refreshed(t, up)
			root := up.GetTrustedMetadataSet().Root
			if root.Signed.Version != wantRoot {
				t.Fatalf("client trusts root %d, want %d", root.Signed.Version, wantRoot)
			}
			if root.Signed.Roles[last.Role].KeyIDs[0] != last.NewKeyID || slices.Contains(root.Signed.Roles[last.Role].KeyIDs, last.OldKeyID) {
				t.Fatalf("%s keys %v, want only the new %s", last.Role, root.Signed.Roles[last.Role].KeyIDs, last.NewKeyID)
			}
			if sel, found, _ := SelectTarget(tg, "lamp-1", Installed{}); !found || sel.Custom.Version != "1.1.0" {
				t.Fatalf("after rotation selected %+v", sel.Custom)
			}
		})
	}
}

func TestRotationWithThresholds(t *testing.T) {
	f := newFixture(t, InitOptions{Thresholds: Thresholds{Root: 2, Targets: 2}})
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(root.Signatures); got != 2 {
		t.Fatalf("root has %d signatures, want 2", got)
	}
	if _, err := RotateKey(f.dir, RoleRoot, RotateOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("RotateKey without OldKeyID of a two-key role: %v, want ErrInvalid", err)
	}
	old := root.Signed.Roles[RoleRoot].KeyIDs[1]
	newKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	res, err := RotateKey(f.dir, RoleRoot, RotateOptions{OldKeyID: old, NewKey: newKey})
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if res.NewKeyID != newKey.ID {
		t.Fatalf("new key %s, want the given %s", res.NewKeyID, newKey.ID)
	}
	up := newClient(t, f.dir, f.root)
	if err := up.Refresh(); err != nil {
		t.Fatalf("Refresh after threshold-2 rotation: %v", err)
	}
	if v := up.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
		t.Fatalf("client trusts root %d, want 2", v)
	}
}

// refreshed refreshes up and returns its verified targets.
func refreshed(t *testing.T, up *updater.Updater) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	if err := up.Refresh(); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return trustedTargets(t, up)
}

// The device's own fetcher builds package URLs with RemoteTargetPath; they
// must be the ones go-tuf's updater asks for.
func TestRemoteTargetPathMatchesUpdater(t *testing.T) {
	f := newFixture(t, InitOptions{})
	var seen []string
	h := NewHandler(f.dir)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	up := newUpdaterFor(t, srv.URL, srv.Client(), f.root)
	sel, found, err := SelectTarget(refreshed(t, up), "plug-2", Installed{})
	if err != nil || !found {
		t.Fatalf("select: %v %v", found, err)
	}
	seen = nil
	if _, _, err := up.DownloadTarget(sel.File, "", ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"/" + RemoteTargetPath(sel.Path, sel.File.Hashes["sha256"]), "/" + RemoteTargetPath(sel.Path, sel.File.Hashes["sha512"])}
	if len(seen) != 1 || !slices.Contains(want, seen[0]) {
		t.Fatalf("updater fetched %v, want one of %v", seen, want)
	}
	if !strings.HasPrefix(seen[0], "/targets/plug-2/0.9.0/") {
		t.Fatalf("package path %s not under targets/MODEL/VERSION", seen[0])
	}
}

// A rotation interrupted after N.root.json (before the root.json copy and
// the re-signed timestamp) is completed by the next Publish.
func TestPublishCompletesInterruptedRotation(t *testing.T) {
	f := newFixture(t, InitOptions{})
	md := filepath.Join(f.dir, metadataDir)
	oldRoot := tufrepotest.ReadFile(t, filepath.Join(md, "root.json"))
	oldTimestamp := tufrepotest.ReadFile(t, filepath.Join(md, "timestamp.json"))
	if _, err := RotateKey(f.dir, RoleTimestamp, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The crash: 2.root.json is there, the copy and timestamp are not.
	for name, data := range map[string][]byte{"root.json": oldRoot, "timestamp.json": oldTimestamp} {
		if err := os.WriteFile(filepath.Join(md, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := newClient(t, f.dir, f.root).Refresh(); err == nil {
		t.Fatal("the interrupted repository verified; the test simulates nothing")
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatalf("Publish after the interruption: %v", err)
	}
	if got := tufrepotest.ReadFile(t, filepath.Join(md, "root.json")); !equalBytes(got, tufrepotest.ReadFile(t, filepath.Join(md, "2.root.json"))) {
		t.Fatal("root.json not repaired to root 2")
	}
	if err := newClient(t, f.dir, f.root).Refresh(); err != nil {
		t.Fatalf("Refresh after completing: %v", err)
	}
}
