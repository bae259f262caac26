package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// decodeJSON parses a command's --output json.
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, out)
	}
	return v
}

// tableRows splits table output into rows of cells and checks the header.
func tableRows(t *testing.T, out string, header ...string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(header, " ") {
		t.Fatalf("header %q, want %q\n%s", lines[0], header, out)
	}
	rows := make([][]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// within fails unless got is want, give or take the second the command
// took (TUF expiry times are whole seconds).
func within(t *testing.T, what string, got, before, after time.Time, d time.Duration) {
	t.Helper()
	lo, hi := before.Add(d).Truncate(time.Second), after.Add(d)
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s expires %v, want between %v and %v", what, got, lo, hi)
	}
}

func TestRepoWorkflow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")

	// init: two targets keys, custom expiries.
	before := time.Now()
	out := mustRun(t, "-o", "json", "repo", "init", dir, "--threshold", "targets=2", "--expires", "timestamp=2d,root=400d")
	after := time.Now()
	roles := decodeJSON[[]roleInfo](t, out)
	if len(roles) != 4 {
		t.Fatalf("init shows %d roles: %s", len(roles), out)
	}
	wantExpiry := map[string]time.Duration{"root": 400 * day, "targets": 90 * day, "snapshot": 7 * day, "timestamp": 2 * day}
	for i, r := range roles {
		if r.Role != allRoles[i] || r.Version != 1 {
			t.Errorf("role %d: %+v", i, r)
		}
		wantKeys := 1
		if r.Role == "targets" {
			wantKeys = 2
		}
		if r.Threshold != wantKeys || len(r.Keys) != wantKeys {
			t.Errorf("%s: threshold %d, %d keys, want %d", r.Role, r.Threshold, len(r.Keys), wantKeys)
		}
		within(t, r.Role, r.Expires, before, after, wantExpiry[r.Role])
	}
	targetsKeys := roles[1].Keys

	// add: two versions, the second with its own counter and name.
	file1, _ := tufrepotest.PackageFile(t, "lamp.img", 3000)
	file2, _ := tufrepotest.PackageFile(t, "lamp.img", 5000)
	out = mustRun(t, "repo", "add", dir, file1, "--model", "lamp-1", "--version", "1.0.0")
	rows := tableRows(t, out, "MODEL", "VERSION", "COUNTER", "BYTES", "MIN-RAM", "STATE", "PATH")
	if len(rows) != 1 || strings.Join(rows[0], " ") != "lamp-1 1.0.0 1 3000 - staged lamp-1/1.0.0/lamp.img" {
		t.Fatalf("add printed %q", out)
	}
	added := decodeJSON[targetJSON](t, mustRun(t, "-o", "json", "repo", "add", dir, file2,
		"--model", "lamp-1", "--version", "1.1.0", "--counter", "10", "--name", "lamp-1.1.img"))
	if added.Path != "lamp-1/1.1.0/lamp-1.1.img" || added.Counter != 10 || added.Length != 5000 ||
		added.Published || len(added.Hashes["sha256"]) != 64 || len(added.Hashes["sha512"]) != 128 {
		t.Fatalf("add -o json: %+v", added)
	}

	// publish, with this run's own timestamp expiry.
	before = time.Now()
	published := decodeJSON[[]publishedRole](t, mustRun(t, "-o", "json", "repo", "publish", dir, "--expires", "timestamp=3d"))
	after = time.Now()
	if len(published) != 3 {
		t.Fatalf("publish: %+v", published)
	}
	for i, p := range published {
		if p.Role != allRoles[i+1] || p.Version != 2 {
			t.Errorf("publish row %d: %+v", i, p)
		}
	}
	within(t, "targets", published[0].Expires, before, after, 90*day)
	within(t, "timestamp", published[2].Expires, before, after, 3*day)

	// list: JSON parses and says published; the table is readable.
	listed := decodeJSON[[]targetJSON](t, mustRun(t, "-o", "json", "repo", "list", dir))
	if len(listed) != 2 || listed[0].Version != "1.0.0" || listed[0].Counter != 1 ||
		listed[1].Version != "1.1.0" || listed[1].Counter != 10 || !listed[0].Published || !listed[1].Published {
		t.Fatalf("list -o json: %+v", listed)
	}
	if listed[1].Hashes["sha256"] != added.Hashes["sha256"] {
		t.Errorf("list hash %s, add said %s", listed[1].Hashes["sha256"], added.Hashes["sha256"])
	}
	out = mustRun(t, "repo", "list", dir)
	rows = tableRows(t, out, "MODEL", "VERSION", "COUNTER", "BYTES", "MIN-RAM", "STATE", "PATH")
	want := []string{
		"lamp-1 1.0.0 1 3000 - published lamp-1/1.0.0/lamp.img",
		"lamp-1 1.1.0 10 5000 - published lamp-1/1.1.0/lamp-1.1.img",
	}
	if len(rows) != len(want) {
		t.Fatalf("list:\n%s", out)
	}
	for i := range want {
		if got := strings.Join(rows[i], " "); got != want[i] {
			t.Errorf("list row %d: %q, want %q", i, got, want[i])
		}
	}
	if !regexp.MustCompile(`(?m)^lamp-1  1\.0\.0    1        3000   -        published  lamp-1/1\.0\.0/lamp\.img$`).MatchString(out) {
		t.Errorf("list columns are not aligned:\n%s", out)
	}

	// root: the exact served root, which verifies itself, on stdout or in a file.
	served, err := tufrepo.TrustedRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "repo", "root", dir)
	if strings.TrimSuffix(out, "\n") != strings.TrimSuffix(string(served), "\n") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("root printed something else than root.json:\n%s", out)
	}
	root, err := metadata.Root().FromBytes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		t.Fatalf("printed root does not verify: %v", err)
	}
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "repo", "root", dir, "--out", rootFile)
	if out != "root version 1 written to "+rootFile+"\n" {
		t.Errorf("root --out printed %q", out)
	}
	if got := tufrepotest.ReadFile(t, rootFile); string(got) != string(served) {
		t.Error("root --out wrote something else than root.json")
	}

	// rotate: the role has two keys, so the old one must be named.
	r := runCLI(t, "repo", "rotate", dir, "--role", "targets")
	if r.code != exitFailure || !strings.Contains(r.stderr, "role targets has 2 keys") || !strings.Contains(r.stderr, "--old-key") {
		t.Fatalf("rotate without --old-key: exit %d, %q", r.code, r.stderr)
	}
	keyFile := filepath.Join(t.TempDir(), "new.pem")
	kg := decodeJSON[struct{ ID, File string }](t, mustRun(t, "-o", "json", "repo", "keygen", "--out", keyFile))
	if kg.File != keyFile || len(kg.ID) != 64 {
		t.Fatalf("keygen: %+v", kg)
	}
	rot := decodeJSON[rotateJSON](t, mustRun(t, "-o", "json", "repo", "rotate", dir,
		"--role", "targets", "--key", keyFile, "--old-key", targetsKeys[1][:8]))
	if rot.OldKey != targetsKeys[1] || rot.NewKey != kg.ID || rot.RootVersion != 2 {
		t.Fatalf("rotate: %+v (targets keys %v)", rot, targetsKeys)
	}
	gotKeys := rot.Roles[1].Keys
	if len(gotKeys) != 2 || !containsAll(gotKeys, targetsKeys[0], kg.ID) {
		t.Errorf("targets keys after rotation %v, want %s and %s", gotKeys, targetsKeys[0], kg.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "retired")); err != nil {
		t.Errorf("old key not retired: %v", err)
	}

	// The new root chains from the old one; publish still works under it.
	next, err := metadata.Root().FromBytes([]byte(mustRun(t, "repo", "root", dir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, next); err != nil || next.Signed.Version != 2 {
		t.Fatalf("root version %d after rotation does not verify under version 1: %v", next.Signed.Version, err)
	}
	out = mustRun(t, "repo", "publish", dir)
	rows = tableRows(t, out, "ROLE", "VERSION", "EXPIRES")
	if len(rows) != 3 || rows[0][0] != "targets" || rows[0][1] != "4" || rows[2][0] != "timestamp" {
		t.Errorf("publish after rotation:\n%s", out) // rotation signed version 3
	}
	if _, err := time.Parse(time.RFC3339, rows[2][2]); err != nil {
		t.Errorf("publish table expiry %q: %v", rows[2][2], err)
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestInitTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	out := mustRun(t, "repo", "init", dir, "--threshold", "root=2")
	rows := tableRows(t, out, "ROLE", "VERSION", "EXPIRES", "THRESHOLD", "KEYS")
	if len(rows) != 4 {
		t.Fatalf("init:\n%s", out)
	}
	for i, r := range rows {
		if r[0] != allRoles[i] || r[1] != "1" {
			t.Errorf("row %d: %v", i, r)
		}
	}
	// Short key IDs, as the files in DIR/keys are named.
	keys := strings.Split(rows[0][4], ",")
	if rows[0][3] != "2" || len(keys) != 2 {
		t.Fatalf("root row %v", rows[0])
	}
	for _, k := range keys {
		if m, _ := filepath.Glob(filepath.Join(dir, "keys", "root-"+k+".pem")); len(m) != 1 || len(k) != 16 {
			t.Errorf("key %s: no file keys/root-%s.pem", k, k)
		}
	}
}

func TestListEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	mustRun(t, "repo", "init", dir)
	if out := mustRun(t, "-o", "json", "repo", "list", dir); out != "[]\n" {
		t.Errorf("list -o json of an empty repository: %q", out)
	}
	if rows := tableRows(t, mustRun(t, "repo", "list", dir), "MODEL", "VERSION", "COUNTER", "BYTES", "MIN-RAM", "STATE", "PATH"); len(rows) != 0 {
		t.Errorf("rows %v", rows)
	}
}

// --min-ram signs the package's RAM requirement in bytes; add and list
// show it in --min-ram's own syntax, and bad sizes change nothing.
func TestRepoAddMinRAM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	mustRun(t, "repo", "init", dir)
	file, _ := tufrepotest.PackageFile(t, "lamp.img", 1000)

	out := mustRun(t, "repo", "add", dir, file, "--model", "lamp-1", "--version", "1.0.0", "--min-ram", "512MiB")
	rows := tableRows(t, out, "MODEL", "VERSION", "COUNTER", "BYTES", "MIN-RAM", "STATE", "PATH")
	if len(rows) != 1 || strings.Join(rows[0], " ") != "lamp-1 1.0.0 1 1000 512MiB staged lamp-1/1.0.0/lamp.img" {
		t.Fatalf("add --min-ram 512MiB printed %q", out)
	}
	added := decodeJSON[targetJSON](t, mustRun(t, "-o", "json", "repo", "add", dir, file,
		"--model", "lamp-1", "--version", "1.1.0", "--min-ram", "1536 KiB"))
	if added.MinRAM != 1536<<10 {
		t.Fatalf("add --min-ram '1536 KiB' -o json: min_ram %d, want %d", added.MinRAM, 1536<<10)
	}
	mustRun(t, "repo", "add", dir, file, "--model", "lamp-1", "--version", "1.2.0", "--min-ram", "1000000")
	mustRun(t, "repo", "add", dir, file, "--model", "lamp-1", "--version", "1.3.0")

	// Bad sizes: a usage error naming the flag, and nothing is added.
	for _, bad := range []string{"", "lots", "-1", "1.5GiB", "512MB", "512 mb", "1PiB", "GiB", "9223372036854775808", "8589934592GiB"} {
		r := runCLI(t, "repo", "add", dir, file, "--model", "lamp-1", "--version", "9.9.9", "--min-ram", bad)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--min-ram") || !strings.Contains(r.stderr, "bad size") {
			t.Errorf("--min-ram %q: exit %d, stderr %q; want a usage error about the size", bad, r.code, r.stderr)
		}
	}

	mustRun(t, "repo", "publish", dir)
	listed := decodeJSON[[]targetJSON](t, mustRun(t, "-o", "json", "repo", "list", dir))
	wantRAM := []uint64{512 << 20, 1536 << 10, 1000000, 0}
	if len(listed) != len(wantRAM) {
		t.Fatalf("list after bad adds: %+v, want %d packages", listed, len(wantRAM))
	}
	for i, w := range wantRAM {
		if listed[i].MinRAM != w || !listed[i].Published {
			t.Errorf("package %s: min_ram %d published %v, want %d published", listed[i].Version, listed[i].MinRAM, listed[i].Published, w)
		}
	}
	rows = tableRows(t, mustRun(t, "repo", "list", dir), "MODEL", "VERSION", "COUNTER", "BYTES", "MIN-RAM", "STATE", "PATH")
	var got []string
	for _, r := range rows {
		got = append(got, r[1]+"="+r[4])
	}
	if want := "1.0.0=512MiB 1.1.0=1536KiB 1.2.0=1000000 1.3.0=-"; strings.Join(got, " ") != want {
		t.Errorf("list MIN-RAM column %q, want %q", strings.Join(got, " "), want)
	}

	// What devices get: the signed custom metadata has min_ram in bytes,
	// and none at all without a requirement.
	signed, err := metadata.Targets().FromFile(filepath.Join(dir, "repository", "metadata", "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"lamp-1/1.0.0/lamp.img": `{"counter":1,"min_ram":536870912,"model":"lamp-1","version":"1.0.0"}`,
		"lamp-1/1.3.0/lamp.img": `{"counter":4,"model":"lamp-1","version":"1.3.0"}`,
	} {
		tf, ok := signed.Signed.Targets[p]
		if !ok || tf.Custom == nil {
			t.Fatalf("%s not signed with custom metadata", p)
		}
		var v any
		if err := json.Unmarshal(*tf.Custom, &v); err != nil {
			t.Fatal(err)
		}
		canon, _ := json.Marshal(v) // sorted keys
		if string(canon) != want {
			t.Errorf("%s signed custom %s, want %s", p, canon, want)
		}
	}
}

// formatRAM writes what --min-ram reads back, and the bytes of what it
// cannot.
func TestFormatRAM(t *testing.T) {
	for _, n := range []uint64{1, 1023, 1024, 1536 << 10, 512 << 20, 3 << 30, 1 << 50, 1<<63 - 1} {
		got, err := parseSize(formatRAM(n))
		if err != nil || uint64(got) != n {
			t.Errorf("parseSize(formatRAM(%d) = %q) = %d, %v", n, formatRAM(n), got, err)
		}
	}
	if got := formatRAM(1 << 63); got != "9223372036854775808" {
		t.Errorf("formatRAM(1<<63) = %q, want the bytes", got)
	}
}
