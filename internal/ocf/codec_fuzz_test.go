package ocf

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeMap: whatever DecodeMap accepts must survive encode → decode
// unchanged, and nothing may panic. Equality is on the deterministic
// encoding, which also holds for NaN. Hostile shapes (duplicate keys,
// indefinite lengths, tags, deep nesting, NaN) are seeds in
// testdata/fuzz/FuzzDecodeMap.
func FuzzDecodeMap(f *testing.F) {
	for _, seed := range [][]byte{
		mustEncode(f, map[string]any{"purl": "https://example.com/repo", "swupdateaction": "upgrade", "updatetime": "now"}),
		mustEncode(f, map[string]any{"x.org.ocfupdate.progress": map[string]any{"done": 10, "total": 100}, "neg": -5, "f": 1.5, "b": true, "n": nil}),
		mustEncode(f, map[string]any{"links": []any{map[string]any{"href": "/oic/d", "rt": []string{"oic.wk.d"}}}}),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m1, err := DecodeMap(data)
		if err != nil {
			return
		}
		enc1, err := Encode(m1)
		if err != nil {
			t.Fatalf("decoded map does not encode: %v (%#v)", err, m1)
		}
		m2, err := DecodeMap(enc1)
		if err != nil {
			t.Fatalf("own encoding %x does not decode: %v", enc1, err)
		}
		enc2, err := Encode(m2)
		if err != nil {
			t.Fatalf("second encode: %v", err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("round trip changed the map:\n%x\n%x", enc1, enc2)
		}
		if len(m1) != len(m2) {
			t.Fatalf("round trip changed the key count: %d → %d", len(m1), len(m2))
		}
		for k := range m1 {
			if _, ok := m2[k]; !ok {
				t.Fatalf("round trip lost key %q", k)
			}
		}
		if !hasNaN(m1) && !reflect.DeepEqual(m1, m2) {
			t.Fatalf("round trip changed values:\n%#v\n%#v", m1, m2)
		}
	})
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case float32:
		return x != x
	case map[string]any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	case map[any]any:
		for k, e := range x {
			if hasNaN(k) || hasNaN(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}
