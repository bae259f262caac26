package swu

import (
	"reflect"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

func TestRepresent(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	full := Properties{
		NV:         "2.1.0",
		PURL:       "https://updates.example.com/repo",
		Action:     ActionUpgrade,
		State:      StateSVV,
		Result:     ResultSuccess,
		LastUpdate: time.Date(2025, 6, 1, 10, 0, 0, 0, berlin),
		Signed:     "vendor",
		UpdateTime: time.Date(2030, 1, 9, 14, 30, 0, 500_000_000, time.UTC),
		Progress:   &Progress{Done: 1024, Total: 4096},
		Detail:     "downloading 2.1.0",
		Name:       "living room",
	}
	fullRW := map[string]any{
		"nv":                       "2.1.0",
		"purl":                     "https://updates.example.com/repo",
		"swupdateaction":           "upgrade",
		"swupdatestate":            "svv",
		"swupdateresult":           int64(1),
		"lastupdate":               "2025-06-01T09:00:00Z",
		"signed":                   "vendor",
		"updatetime":               "2030-01-09T14:30:00.5Z",
		"x.org.ocfupdate.progress": map[string]any{"done": int64(1024), "total": int64(4096)},
		"x.org.ocfupdate.detail":   "downloading 2.1.0",
	}
	withBaseline := func(m map[string]any, name string) map[string]any {
		out := map[string]any{"rt": []string{"oic.r.softwareupdate"}, "if": []string{"oic.if.rw", "oic.if.baseline"}}
		for k, v := range m {
			out[k] = v
		}
		if name != "" {
			out["n"] = name
		}
		return out
	}
	zeroRW := map[string]any{
		"nv":                     "",
		"purl":                   "",
		"swupdateaction":         "idle",
		"swupdatestate":          "idle",
		"swupdateresult":         int64(0),
		"updatetime":             "none",
		"x.org.ocfupdate.detail": "",
	}

	cases := []struct {
		name  string
		p     Properties
		iface string
		want  map[string]any
	}{
		{"full rw", full, IfRW, fullRW},
		{"full baseline", full, IfBaseline, withBaseline(fullRW, "living room")},
		{"zero rw: defaults, optional properties left out", Properties{}, IfRW, zeroRW},
		{"zero baseline: no n", Properties{}, IfBaseline, withBaseline(zeroRW, "")},
		{"empty interface means rw", full, "", fullRW},
		{"HTTP status result", Properties{Result: 404, State: StateIdle, Action: ActionIdle}, IfRW, func() map[string]any {
			m := map[string]any{}
			for k, v := range zeroRW {
				m[k] = v
			}
			m["swupdateresult"] = int64(404)
			return m
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Represent(tc.p, tc.iface)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Represent:\n got  %#v\n want %#v", got, tc.want)
			}
			// It must encode, and decode to a map a client can read.
			b, err := ocf.Encode(got)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			m, err := ocf.DecodeMap(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(m) != len(tc.want) {
				t.Fatalf("decoded %d properties, want %d", len(m), len(tc.want))
			}
		})
	}
}

// What GET serves for updatetime must be accepted back by UPDATE (when in
// the future): a client that copies the value must not be refused.
func TestRepresentUpdateTimeRoundTrip(t *testing.T) {
	when := time.Date(2031, 2, 3, 4, 5, 6, 789, time.FixedZone("", -7*3600))
	rep := Represent(Properties{UpdateTime: when}, IfRW)
	u, err := ParseUpdate(cb(t, map[string]any{"updatetime": rep["updatetime"]}), testNow, ParseOptions{})
	if err != nil {
		t.Fatalf("ParseUpdate(%v): %v", rep["updatetime"], err)
	}
	if !u.UpdateTime.Equal(when) {
		t.Fatalf("round trip gave %v, want %v", u.UpdateTime, when)
	}
}
