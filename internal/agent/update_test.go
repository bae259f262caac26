package agent

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpdateErrors sends every kind of bad UPDATE over CoAP. Each gets its
// code and a diagnostic naming the property, and GET afterwards shows that
// nothing changed — not even the purl that came along with the error.
func TestUpdateErrors(t *testing.T) {
	h := start(t, "", nil)
	h.mustPost(map[string]any{"purl": "https://repo.example/ok"})
	before := h.status()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	purl := "https://repo.example/changed"
	tests := []struct {
		name  string
		cf    int
		body  []byte
		query string
		code  codes.Code
		prop  string
	}{
		{"malformed cbor", 60, []byte{0xa1, 0x64, 'p', 'u'}, "", codes.BadRequest, ""},
		{"not a map", 60, enc(t, []string{"purl"}), "", codes.BadRequest, ""},
		{"empty map", 60, enc(t, map[string]any{}), "", codes.BadRequest, ""},
		{"purl wrong type", 60, enc(t, map[string]any{"purl": 42}), "", codes.BadRequest, "purl"},
		{"action wrong type", 10000, enc(t, map[string]any{"purl": purl, "swupdateaction": []int{1}, "updatetime": "now"}), "", codes.BadRequest, "swupdateaction"},
		{"updatetime wrong type", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "isac", "updatetime": 17}), "", codes.BadRequest, "updatetime"},
		{"unknown property", 60, enc(t, map[string]any{"purl": purl, "colour": "red"}), "", codes.BadRequest, "colour"},
		{"read-only state", 60, enc(t, map[string]any{"purl": purl, "swupdatestate": "idle"}), "", codes.BadRequest, "swupdatestate"},
		{"read-only result", 60, enc(t, map[string]any{"purl": purl, "swupdateresult": 0}), "", codes.BadRequest, "swupdateresult"},
		{"read-only nv", 60, enc(t, map[string]any{"purl": purl, "nv": "9"}), "", codes.BadRequest, "nv"},
		{"read-only vendor progress", 60, enc(t, map[string]any{"purl": purl, "x.org.ocfupdate.progress": map[string]int{"done": 1}}), "", codes.BadRequest, "x.org.ocfupdate.progress"},
		{"bad enum", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "reboot", "updatetime": "now"}), "", codes.BadRequest, "swupdateaction"},
		{"bad time", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "isac", "updatetime": "tomorrow"}), "", codes.BadRequest, "updatetime"},
		{"time without zone", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "isac", "updatetime": "2030-01-01T10:00:00"}), "", codes.BadRequest, "updatetime"},
		{"past time", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "isac", "updatetime": "2001-01-01T00:00:00Z"}), "", codes.BadRequest, "updatetime"},
		{"action without time", 60, enc(t, map[string]any{"purl": purl, "swupdateaction": "upgrade"}), "", codes.BadRequest, "updatetime"},
		{"both time spellings", 60, enc(t, map[string]any{"swupdateaction": "isac", "updatetime": future, "updateTime": future}), "", codes.BadRequest, "updatetime"},
		{"bad url", 60, enc(t, map[string]any{"purl": "https//no scheme"}), "", codes.BadRequest, "purl"},
		{"relative url", 60, enc(t, map[string]any{"purl": "/repo"}), "", codes.BadRequest, "purl"},
		{"oversized body", 60, bytes.Repeat([]byte{0}, ocf.MaxBodySize+1), "", codes.RequestEntityTooLarge, ""},
		{"json content format", 50, []byte(`{"purl":"https://x.example"}`), "", codes.UnsupportedMediaType, ""},
		{"no content format", -1, enc(t, map[string]any{"purl": purl}), "", codes.UnsupportedMediaType, ""},
		{"wrong interface", 60, enc(t, map[string]any{"purl": purl}), "if=oic.if.r", codes.Forbidden, ""},
		{"time alone, nothing scheduled", 60, enc(t, map[string]any{"updatetime": future}), "", codes.BadRequest, "updatetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q []string
			if tt.query != "" {
				q = append(q, tt.query)
			}
			_, err := h.conn.PostRaw(ctx(t), swu.DefaultHref, tt.cf, tt.body, q...)
			var de *client.DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("POST: %v, want %v", err, tt.code)
			}
			if de.Code != tt.code || de.Message == "" {
				t.Errorf("got %v %q, want %v with a diagnostic", de.Code, de.Message, tt.code)
			}
			if tt.prop != "" && de.Property != tt.prop {
				t.Errorf("diagnostic property %q (%s), want %q", de.Property, de.Message, tt.prop)
			}
			if after := h.status(); after != before {
				t.Errorf("resource changed:\n before %+v\n after  %+v", before, after)
			}
		})
	}
	h.steps.none(t)
}

// TestMethods: PUT and DELETE are 4.05 with a diagnostic.
func TestMethods(t *testing.T) {
	h := start(t, "", nil)
	for _, m := range []codes.Code{codes.PUT, codes.DELETE} {
		_, err := h.conn.Do(ctx(t), m, swu.DefaultHref, 60, enc(t, map[string]any{"purl": "https://x.example"}))
		var de *client.DeviceError
		if !errors.As(err, &de) || de.Code != codes.MethodNotAllowed || de.Message == "" {
			t.Errorf("%v: %v", m, err)
		}
	}
}

// TestDraftSpellings: updateTime and isv are accepted on UPDATE and shown
// with the design's names.
func TestDraftSpellings(t *testing.T) {
	h := start(t, "", nil)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isv", "updateTime": at.Format(time.RFC3339)})
	s := h.status()
	if s.Action != "isvv" || s.UpdateTime != at.Format(time.RFC3339) || s.State != "idle" {
		t.Errorf("after draft spellings: %+v", s)
	}
	if !strings.Contains(s.PURL, "repo.example") {
		t.Errorf("purl %q", s.PURL)
	}
	h.steps.none(t)
	// none cancels the schedule and keeps the time.
	h.mustPost(map[string]any{"updatetime": "none"})
	if s := h.status(); s.Action != "idle" || s.UpdateTime != at.Format(time.RFC3339) {
		t.Errorf("after none: %+v", s)
	}
}
