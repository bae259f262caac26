package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type doc struct {
	Version int               `json:"version"`
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	When    time.Time         `json:"when"`
	Tags    map[string]string `json:"tags,omitempty"`
}

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTrip(t *testing.T) {
	s := openT(t, t.TempDir())
	want := doc{Version: 1, Name: "dev-1", Count: 42, When: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Tags: map[string]string{"a": "b"}}
	if err := s.Save("state", want); err != nil {
		t.Fatalf("Save: %v", err)
	}
	var got doc
	if err := s.Load("state", &got); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}

	// A second Save replaces the document as a whole (a shorter one too).
	want2 := doc{Version: 1, Name: "x"}
	if err := s.Save("state", &want2); err != nil {
		t.Fatalf("Save 2: %v", err)
	}
	var got2 doc
	if err := s.Load("state", &got2); err != nil {
		t.Fatalf("Load 2: %v", err)
	}
	if !reflect.DeepEqual(got2, want2) {
		t.Fatalf("Load 2 = %+v, want %+v", got2, want2)
	}

	// And it survives closing and reopening the directory.
	dir := s.Dir()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openT(t, dir)
	var got3 doc
	if err := s2.Load("state", &got3); err != nil {
		t.Fatalf("Load after reopen: %v", err)
	}
	if !reflect.DeepEqual(got3, want2) {
		t.Fatalf("Load after reopen = %+v, want %+v", got3, want2)
	}
}

func TestLoadNotFound(t *testing.T) {
	s := openT(t, t.TempDir())
	var d doc
	err := s.Load("absent", &d)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load = %v, want ErrNotFound", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load = %v, must not be ErrCorrupt", err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"whitespace", " \n"},
		{"truncated", `{"version": 1, "name": "dev`},
		{"garbage", "\x00\x01\x02"},
		{"null", "null"},
		{"array", `[1,2]`},
		{"string", `"state"`},
		{"trailing data", `{"version":1} {"version":2}`},
		{"wrong type", `{"version": "one"}`},
		{"too large", `{"name":"` + strings.Repeat("x", MaxDocumentSize) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			path := filepath.Join(dir, "state")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var d doc
			err := s.Load("state", &d)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path %s", err, path)
			}
		})
	}
}

func TestLoadNonPointerIsNotCorrupt(t *testing.T) {
	s := openT(t, t.TempDir())
	if err := s.Save("state", doc{Version: 1}); err != nil {
		t.Fatal(err)
	}
	var d doc
	err := s.Load("state", d) // caller bug: not a pointer
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load(non-pointer) = %v, want a non-ErrCorrupt error", err)
	}
}

func TestSaveRejects(t *testing.T) {
	tests := []struct {
		name    string
		docName string
		v       any
		want    error // nil: any error
	}{
		{"nil value", "state", nil, nil},
		{"array", "state", []int{1}, nil},
		{"number", "state", 3, nil},
		{"unencodable", "state", map[string]any{"c": make(chan int)}, nil},
		{"too large", "state", doc{Name: strings.Repeat("x", MaxDocumentSize)}, ErrTooLarge},
		{"bad name", "../state", doc{}, ErrInvalidName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			err := s.Save(tc.docName, tc.v)
			if err == nil {
				t.Fatal("Save succeeded, want error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Save = %v, want %v", err, tc.want)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != lockName {
					t.Errorf("failed Save left %s behind", e.Name())
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"state", true},
		{"state.json", true},
		{"id_v2-A", true},
		{"", false},
		{".", false},
		{"..", false},
		{"...", false},
		{".hidden", false},
		{"a/b", false},
		{"../x", false},
		{`a\b`, false},
		{"/abs", false},
		{"lock", false},
		{"state.tmp", false},
		{"sp ace", false},
		{"nul\x00", false},
		{"é", false},
		{strings.Repeat("a", maxName), true},
		{strings.Repeat("a", maxName+1), false},
	}
	s := openT(t, t.TempDir())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saveErr := s.Save(tc.name, doc{Version: 1})
			var d doc
			loadErr := s.Load(tc.name, &d)
			removeErr := s.Remove(tc.name)
			if tc.ok {
				if saveErr != nil || loadErr != nil || removeErr != nil {
					t.Fatalf("valid name: Save=%v Load=%v Remove=%v", saveErr, loadErr, removeErr)
				}
				return
			}
			for op, err := range map[string]error{"Save": saveErr, "Load": loadErr, "Remove": removeErr} {
				if !errors.Is(err, ErrInvalidName) {
					t.Errorf("%s = %v, want ErrInvalidName", op, err)
				}
			}
		})
	}
}

func TestLeftoverTempIgnoredAndRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	want := doc{Version: 1, Name: "committed"}
	if err := s.Save("state", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash between writing state.tmp and renaming it leaves a partial
	// temp file; an unrelated .tmp that is not ours must survive.
	tmp := filepath.Join(dir, "state.tmp")
	if err := os.WriteFile(tmp, []byte(`{"version":1,"name":"half-wri`), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, ".editor.tmp")
	if err := os.WriteFile(foreign, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := openT(t, dir)
	var got doc
	if err := s2.Load("state", &got); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s still present after Open (stat: %v)", tmp, err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("Open removed a file that is not its own: %v", err)
	}
}

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if !errors.Is(err, ErrLocked) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	s3, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close = %v, want success", err)
	}
	s3.Close()
}

func TestClosed(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save("state", doc{Version: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var d doc
	for op, err := range map[string]error{
		"Save":   s.Save("state", doc{}),
		"Load":   s.Load("state", &d),
		"Remove": s.Remove("state"),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	s := openT(t, dir)
	if err := s.Save("state", doc{Version: 1}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		dir:                          0o700,
		filepath.Join(dir, "state"):  0o600,
		filepath.Join(dir, lockName): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
}

func TestOpenRejectsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open(file) succeeded, want error")
	}
	if s, err := Open(""); err == nil {
		s.Close()
		t.Fatal(`Open("") succeeded, want error`)
	}
}

func TestRemove(t *testing.T) {
	s := openT(t, t.TempDir())
	if err := s.Remove("state"); err != nil {
		t.Fatalf("Remove(absent) = %v, want nil", err)
	}
	if err := s.Save("state", doc{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("state"); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	var d doc
	if err := s.Load("state", &d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after Remove = %v, want ErrNotFound", err)
	}
}

func TestLoadVersioned(t *testing.T) {
	tests := []struct {
		name        string
		content     string
		wantVersion int
		wantErr     error
		wantName    string
	}{
		{"current", `{"version":2,"name":"a"}`, 2, nil, "a"},
		{"older", `{"version":1,"name":"b"}`, 1, nil, "b"},
		{"newer", `{"version":3,"name":"c"}`, 3, ErrUnsupportedVersion, ""},
		{"missing", `{"name":"d"}`, 0, ErrCorrupt, ""},
		{"zero", `{"version":0}`, 0, ErrCorrupt, ""},
		{"negative", `{"version":-1}`, 0, ErrCorrupt, ""},
		{"not a number", `{"version":"2"}`, 0, ErrCorrupt, ""},
		{"fraction", `{"version":1.5}`, 0, ErrCorrupt, ""},
		{"truncated", `{"version":2,"na`, 0, ErrCorrupt, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			if err := os.WriteFile(filepath.Join(dir, "state"), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var d doc
			v, err := s.LoadVersioned("state", 2, &d)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("LoadVersioned = %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("LoadVersioned = %v, want %v", err, tc.wantErr)
			}
			if v != tc.wantVersion {
				t.Errorf("version = %d, want %d", v, tc.wantVersion)
			}
			if d.Name != tc.wantName {
				t.Errorf("name = %q, want %q (v must be untouched on error)", d.Name, tc.wantName)
			}
		})
	}

	s := openT(t, t.TempDir())
	var d doc
	if _, err := s.LoadVersioned("absent", 1, &d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadVersioned(absent) = %v, want ErrNotFound", err)
	}
}

func BenchmarkSave(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	d := doc{Version: 1, Name: "device", When: time.Now().UTC(), Tags: map[string]string{
		"purl": "https://updates.example.com/repo", "state": "idle", "nv": "1.2.3",
	}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Count = i
		if err := s.Save("state", d); err != nil {
			b.Fatal(err)
		}
	}
}
