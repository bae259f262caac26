package pstat

import (
	"errors"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func cb(t testing.TB, v any) []byte {
	t.Helper()
	b, err := ocf.Encode(v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

func TestParseUpdate(t *testing.T) {
	type tc struct {
		name     string
		body     []byte
		want     uint64
		wantErr  bool
		wantProp string
		wantMsg  []string
	}
	cases := []tc{
		{name: "tm 128", body: cb(t, map[string]any{"tm": 128}), want: 128},
		{name: "tm 0", body: cb(t, map[string]any{"tm": 0}), want: 0},
		{name: "tm unsupported bits pass parsing", body: cb(t, map[string]any{"tm": 3}), want: 3},
		{name: "tm max", body: cb(t, map[string]any{"tm": ^uint64(0)}), want: ^uint64(0)},
		{name: "no body", body: nil, wantErr: true, wantMsg: []string{"no payload"}},
		{name: "malformed", body: []byte{0xa1, 0x62, 't'}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "not a map", body: cb(t, []any{128}), wantErr: true, wantMsg: []string{"CBOR map"}},
		{name: "integer keys", body: cb(t, map[int]any{1: 128}), wantErr: true, wantMsg: []string{"text keys"}},
		{name: "oversized", body: make([]byte, ocf.MaxBodySize+1), wantErr: true, wantMsg: []string{"at most"}},
		{name: "empty map", body: cb(t, map[string]any{}), wantErr: true, wantMsg: []string{"empty"}},
		{name: "negative tm", body: cb(t, map[string]any{"tm": -1}), wantErr: true, wantProp: "tm", wantMsg: []string{"unsigned integer", "negative"}},
		{name: "tm text", body: cb(t, map[string]any{"tm": "128"}), wantErr: true, wantProp: "tm", wantMsg: []string{"unsigned integer", "text string"}},
		{name: "tm float", body: cb(t, map[string]any{"tm": 128.0}), wantErr: true, wantProp: "tm", wantMsg: []string{"unsigned integer", "float"}},
		{name: "tm bool", body: cb(t, map[string]any{"tm": true}), wantErr: true, wantProp: "tm", wantMsg: []string{"boolean"}},
		{name: "tm null", body: cb(t, map[string]any{"tm": nil}), wantErr: true, wantProp: "tm", wantMsg: []string{"null"}},
		{name: "unknown", body: cb(t, map[string]any{"tm": 128, "swupdateaction": "upgrade"}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{"unknown property", "only tm"}},
	}
	for _, p := range []string{"dos", "isop", "cm", "om", "sm", "rowneruuid", "rt", "if", "n", "id"} {
		cases = append(cases, tc{name: "read-only " + p, body: cb(t, map[string]any{p: 1, "tm": 128}), wantErr: true, wantProp: p, wantMsg: []string{p + " is read-only"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseUpdate(c.body)
			if !c.wantErr {
				if err != nil || got != c.want {
					t.Fatalf("ParseUpdate = (%d, %v), want %d", got, err, c.want)
				}
				return
			}
			var se *swu.Error
			if !errors.As(err, &se) {
				t.Fatalf("ParseUpdate = (%d, %v), want an *swu.Error", got, err)
			}
			if se.Property != c.wantProp {
				t.Errorf("Property %q, want %q (%q)", se.Property, c.wantProp, se.Message)
			}
			for _, w := range c.wantMsg {
				if !strings.Contains(se.Message, w) {
					t.Errorf("message %q lacks %q", se.Message, w)
				}
			}
		})
	}
}

// FuzzParseUpdate: never panics, refuses only with *swu.Error, and an
// accepted tm survives a round trip. Seeds are in testdata/fuzz.
func FuzzParseUpdate(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		tm, err := ParseUpdate(body)
		if err != nil {
			var se *swu.Error
			if !errors.As(err, &se) || se.Message == "" {
				t.Fatalf("refusal %T %q is not an *swu.Error with a message", err, err)
			}
			return
		}
		b, err := ocf.Encode(map[string]any{"tm": tm})
		if err != nil {
			t.Fatal(err)
		}
		tm2, err := ParseUpdate(b)
		if err != nil || tm2 != tm {
			t.Fatalf("round trip of tm %d gave (%d, %v)", tm, tm2, err)
		}
		// ActionForTM must decide without panicking, too.
		if _, err := ActionForTM(tm); err != nil && !errors.As(err, new(*swu.Error)) {
			t.Fatalf("ActionForTM(%d): %T", tm, err)
		}
	})
}
