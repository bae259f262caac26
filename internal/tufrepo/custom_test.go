package tufrepo

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestParseCustom(t *testing.T) {
	id := Custom{Model: "a", Version: "1", Counter: 2}
	withRAM := func(n uint64) Custom { c := id; c.MinRAM = n; return c }
	const pkg = `"model":"a","version":"1","counter":2`
	tests := []struct {
		name    string
		custom  string // "" for none
		want    Custom // also what comes back with ErrRequirement
		wantErr error  // nil, ErrInvalid (not a package) or ErrRequirement
	}{
		{"package", `{` + pkg + `}`, id, nil},
		{"unknown fields ignored", `{` + pkg + `,"notes":"x"}`, id, nil},
		{"min_ram", `{` + pkg + `,"min_ram":536870912}`, withRAM(512 << 20), nil},
		{"min_ram zero", `{` + pkg + `,"min_ram":0}`, id, nil},
		{"min_ram null", `{` + pkg + `,"min_ram":null}`, id, nil},
		{"min_ram largest", `{` + pkg + `,"min_ram":` + strconv.FormatUint(math.MaxUint64, 10) + `}`, withRAM(math.MaxUint64), nil},
		{"min_ram negative", `{` + pkg + `,"min_ram":-1}`, id, ErrRequirement},
		{"min_ram string", `{` + pkg + `,"min_ram":"512MiB"}`, id, ErrRequirement},
		{"min_ram fraction", `{` + pkg + `,"min_ram":1.5}`, id, ErrRequirement},
		{"min_ram exponent", `{` + pkg + `,"min_ram":1e9}`, id, ErrRequirement},
		{"min_ram over 64 bits", `{` + pkg + `,"min_ram":18446744073709551616}`, id, ErrRequirement},
		{"min_ram bool", `{` + pkg + `,"min_ram":true}`, id, ErrRequirement},
		{"min_ram object", `{` + pkg + `,"min_ram":{}}`, id, ErrRequirement},
		{"no custom metadata", ``, Custom{}, ErrInvalid},
		{"not JSON", `{"model":`, Custom{}, ErrInvalid},
		{"model of the wrong type", `{"model":1,"version":"1","counter":2}`, Custom{}, ErrInvalid},
		{"zero counter", `{"model":"a","version":"1","counter":0}`, Custom{}, ErrInvalid},
		{"no version, bad min_ram", `{"model":"a","counter":2,"min_ram":-1}`, Custom{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := &metadata.TargetFiles{}
			if tt.custom != "" {
				raw := json.RawMessage(tt.custom)
				tf.Custom = &raw
			}
			got, err := ParseCustom(tf)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ParseCustom = %+v, %v; want error %v", got, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if got != tt.want {
				t.Fatalf("ParseCustom = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A malformed min_ram on the package a device would choose is an error,
// never a quiet fallback to an older package; on an older one it does not
// matter; and the package still holds its counter and version.
func TestSelectTargetMalformedRequirement(t *testing.T) {
	tg := targetsOf(map[string]string{
		"a/1/f": `{"model":"a","version":"1","counter":1,"min_ram":1024}`,
		"a/2/f": `{"model":"a","version":"2","counter":2,"min_ram":"lots"}`,
		"a/3/f": `{"model":"a","version":"3","counter":3,"min_ram":2048}`,
		"b/1/f": `{"model":"b","version":"1","counter":1}`,
		"b/2/f": `{"model":"b","version":"2","counter":2,"min_ram":-5}`,
	})
	sel, found, err := SelectTarget(tg, "a", Installed{Counter: 1})
	if err != nil || !found || sel.Path != "a/3/f" || sel.Custom.MinRAM != 2048 {
		t.Fatalf("model a: %+v found=%v %v; want a/3/f needing 2048 bytes", sel, found, err)
	}
	_, found, err = SelectTarget(tg, "b", Installed{})
	if !errors.Is(err, ErrRequirement) || found {
		t.Fatalf("model b: found=%v %v; want ErrRequirement, not b/1/f", found, err)
	}
	// Version "2" of b is installed: its counter is known although its
	// min_ram is not readable, so nothing is newer.
	if _, found, err := SelectTarget(tg, "b", Installed{Version: "2"}); err != nil || found {
		t.Fatalf("model b at version 2: found=%v %v; want nothing newer", found, err)
	}
	if c, ok := InstalledCounter(tg, "a", "2"); !ok || c != 2 {
		t.Fatalf("InstalledCounter(a, 2) = %d, %v; want 2", c, ok)
	}
}

func TestAddTargetMinRAM(t *testing.T) {
	f := newFixture(t, InitOptions{})
	file, _ := tufrepotest.PackageFile(t, "fw.bin", 10)
	got, err := AddTarget(f.dir, file, "lamp-1", "2.0.0", AddOptions{MinRAM: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got.MinRAM != 512<<20 {
		t.Fatalf("AddTarget returned min_ram %d", got.MinRAM)
	}
	// Above what canonical JSON can sign: refused now, not at Publish.
	if _, err := AddTarget(f.dir, file, "lamp-1", "3.0.0", AddOptions{MinRAM: math.MaxInt64 + 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddTarget with min_ram 2^63: %v, want ErrInvalid", err)
	}
	if _, err := AddTarget(f.dir, file, "lamp-1", "3.0.1", AddOptions{MinRAM: math.MaxInt64}); err != nil {
		t.Fatalf("AddTarget with min_ram 2^63-1: %v", err)
	}
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatalf("Publish with the largest min_ram: %v", err)
	}
	working, _, err := loadWorking(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(*working.Signed.Targets["lamp-1/2.0.0/fw.bin"].Custom, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["min_ram"] != float64(512<<20) {
		t.Fatalf("staged custom metadata %v, want min_ram 536870912", raw)
	}
	// Without a requirement the field is absent, as before min_ram existed.
	raw = nil
	if err := json.Unmarshal(*working.Signed.Targets["lamp-1/1.0.0/firmware.bin"].Custom, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["min_ram"]; ok {
		t.Fatalf("custom metadata without a requirement has min_ram: %v", raw)
	}
	list, err := ListTargets(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range list {
		want := map[string]uint64{"lamp-1/2.0.0/fw.bin": 512 << 20, "lamp-1/3.0.1/fw.bin": math.MaxInt64}[tg.Path]
		if tg.MinRAM != want {
			t.Errorf("ListTargets %s: min_ram %d, want %d", tg.Path, tg.MinRAM, want)
		}
	}
}

// A hand-edited package with a malformed min_ram still holds its counter:
// the next AddTarget goes above it and may not reuse its version.
func TestAddTargetAboveMalformedRequirement(t *testing.T) {
	f := newFixture(t, InitOptions{})
	working, _, err := loadWorking(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(`{"model":"lamp-1","version":"7.0","counter":7,"min_ram":"1G"}`)
	working.Signed.Targets["lamp-1/7.0/x.bin"] = &metadata.TargetFiles{Length: 1, Hashes: metadata.Hashes{"sha256": []byte{1}}, Custom: &raw}
	data, err := working.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(f.dir, stagedFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	file, _ := tufrepotest.PackageFile(t, "fw.bin", 10)
	if _, err := AddTarget(f.dir, file, "lamp-1", "7.0", AddOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("AddTarget of the malformed package's version: %v, want ErrExists", err)
	}
	got, err := AddTarget(f.dir, file, "lamp-1", "8.0", AddOptions{})
	if err != nil || got.Counter != 8 {
		t.Fatalf("AddTarget after it: counter %d, %v; want 8", got.Counter, err)
	}
	list, err := ListTargets(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range list {
		if tg.Path == "lamp-1/7.0/x.bin" && tg.Custom != (Custom{}) {
			t.Errorf("ListTargets shows the malformed package as %+v, want a zero Custom", tg.Custom)
		}
	}
}

// Whatever custom metadata a repository signs, ParseCustom decides without
// panicking, and what it accepts survives the encoding AddTarget uses.
func FuzzParseCustom(f *testing.F) {
	for _, s := range []string{
		`{"model":"a","version":"1","counter":2}`,
		`{"model":"a","version":"1","counter":2,"min_ram":536870912}`,
		`{"model":"a","version":"1","counter":2,"min_ram":-1}`,
		`{"model":"a","version":"1","counter":2,"min_ram":null}`,
		`{"model":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		raw := json.RawMessage(b)
		c, err := ParseCustom(&metadata.TargetFiles{Custom: &raw})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if errors.Is(err, ErrRequirement) && (c.Model == "" || c.Counter < 1 || c.MinRAM != 0) {
				t.Fatalf("ErrRequirement with %+v, want the package's identity and no min_ram", c)
			}
			return
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		raw = enc
		again, err := ParseCustom(&metadata.TargetFiles{Custom: &raw})
		if err != nil || again != c {
			t.Fatalf("round trip of %+v gave %+v, %v", c, again, err)
		}
	})
}
