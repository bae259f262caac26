package swu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// testNow is the device clock in tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// cb encodes v as CBOR or fails the test.
func cb(t testing.TB, v any) []byte {
	t.Helper()
	b, err := ocf.Encode(v)
	if err != nil {
		t.Fatalf("encode %v: %v", v, err)
	}
	return b
}

func strp(s string) *string        { return &s }
func actp(a Action) *Action        { return &a }
func timep(t time.Time) *time.Time { return &t }

// equalUpdate compares two Updates by value (times with Equal, and both in UTC).
func equalUpdate(a, b Update) bool {
	eqStr := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqAct := func(x, y *Action) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqTime := func(x, y *time.Time) bool {
		return (x == nil) == (y == nil) && (x == nil || (x.Equal(*y) && x.Location() == y.Location()))
	}
	return eqStr(a.PURL, b.PURL) && eqAct(a.Action, b.Action) && eqTime(a.UpdateTime, b.UpdateTime) &&
		a.Now == b.Now && a.CancelTime == b.CancelTime
}

func formatUpdate(u Update) string {
	var sb strings.Builder
	sb.WriteString("{")
	if u.PURL != nil {
		sb.WriteString(" purl=" + *u.PURL)
	}
	if u.Action != nil {
		sb.WriteString(" action=" + string(*u.Action))
	}
	if u.UpdateTime != nil {
		sb.WriteString(" time=" + u.UpdateTime.Format(time.RFC3339Nano) + "/" + u.UpdateTime.Location().String())
	}
	if u.Now {
		sb.WriteString(" now")
	}
	if u.CancelTime {
		sb.WriteString(" cancel")
	}
	sb.WriteString(" }")
	return sb.String()
}

type parseCase struct {
	name     string
	body     []byte
	opts     ParseOptions
	want     Update   // when wantErr is false
	wantErr  bool     // an *Error is expected
	wantProp string   // its Property
	wantMsg  []string // substrings of its Message
}

func TestParseUpdate(t *testing.T) {
	future := "2030-01-09T14:30:00Z"
	futureT := time.Date(2030, 1, 9, 14, 30, 0, 0, time.UTC)
	okPURL := "https://updates.example.com/repo"
	long := "https://example.com/" + strings.Repeat("a", DefaultMaxPURLLength-len("https://example.com/"))

	cases := []parseCase{
		// The body as a whole.
		{name: "nil body", body: nil, wantErr: true, wantMsg: []string{"no payload"}},
		{name: "malformed CBOR truncated", body: []byte{0xa1, 0x64, 'p'}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "malformed CBOR reserved byte", body: []byte{0xff}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "trailing bytes", body: append(cb(t, map[string]any{"purl": ""}), 0x00), wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "not a map: array", body: cb(t, []any{"purl", okPURL}), wantErr: true, wantMsg: []string{"CBOR map"}},
		{name: "not a map: text", body: cb(t, "upgrade"), wantErr: true, wantMsg: []string{"CBOR map"}},
		{name: "not a map: integer", body: cb(t, 7), wantErr: true, wantMsg: []string{"CBOR map"}},
		{name: "map with integer keys", body: cb(t, map[int]any{1: okPURL}), wantErr: true, wantMsg: []string{"text keys"}},
		{name: "duplicate keys", body: []byte{0xa2, 0x64, 'p', 'u', 'r', 'l', 0x60, 0x64, 'p', 'u', 'r', 'l', 0x60}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "indefinite-length map", body: []byte{0xbf, 0x64, 'p', 'u', 'r', 'l', 0x60, 0xff}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "invalid UTF-8 text", body: []byte{0xa1, 0x64, 'p', 'u', 'r', 'l', 0x61, 0xff}, wantErr: true, wantMsg: []string{"not valid CBOR"}},
		{name: "oversized body", body: cb(t, map[string]any{"purl": strings.Repeat("a", ocf.MaxBodySize)}), wantErr: true, wantMsg: []string{"bytes", "at most"}},
		{name: "empty map", body: cb(t, map[string]any{}), wantErr: true, wantMsg: []string{"empty"}},

		// Wrong types.
		{name: "purl integer", body: cb(t, map[string]any{"purl": 5}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "integer"}},
		{name: "purl negative integer", body: cb(t, map[string]any{"purl": -5}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "integer"}},
		{name: "purl array", body: cb(t, map[string]any{"purl": []string{okPURL}}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "array"}},
		{name: "purl null", body: cb(t, map[string]any{"purl": nil}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "null"}},
		{name: "purl boolean", body: cb(t, map[string]any{"purl": true}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "boolean"}},
		{name: "purl byte string", body: cb(t, map[string]any{"purl": []byte(okPURL)}), wantErr: true, wantProp: "purl", wantMsg: []string{"text string", "byte string"}},
		{name: "action integer", body: cb(t, map[string]any{"swupdateaction": 128, "updatetime": "now"}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{"text string", "integer"}},
		{name: "action array", body: cb(t, map[string]any{"swupdateaction": []string{"upgrade"}, "updatetime": "now"}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{"text string", "array"}},
		{name: "action map", body: cb(t, map[string]any{"swupdateaction": map[string]any{"a": 1}}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{"text string", "map"}},
		{name: "updatetime integer", body: cb(t, map[string]any{"updatetime": 1893456000}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"text string", "integer"}},
		{name: "updatetime float", body: cb(t, map[string]any{"updatetime": 1.5}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"text string", "float"}},
		{name: "updateTime integer", body: cb(t, map[string]any{"updateTime": 0}), wantErr: true, wantProp: "updateTime", wantMsg: []string{"updateTime", "text string"}},

		// Names.
		{name: "unknown property", body: cb(t, map[string]any{"foo": 1}), wantErr: true, wantProp: "foo", wantMsg: []string{"unknown property", `"foo"`, `"purl", "swupdateaction" and "updatetime"`}},
		{name: "unknown property differs in case", body: cb(t, map[string]any{"PURL": okPURL}), wantErr: true, wantProp: "PURL", wantMsg: []string{"unknown property"}},
		{name: "unknown property next to valid ones", body: cb(t, map[string]any{"purl": okPURL, "zzz": true}), wantErr: true, wantProp: "zzz", wantMsg: []string{"unknown property"}},
		{name: "long unknown name is truncated", body: cb(t, map[string]any{strings.Repeat("k", 300): 1}), wantErr: true, wantProp: strings.Repeat("k", 300), wantMsg: []string{"unknown property", "…"}},

		// Enumerations and aliases.
		{name: "bad action", body: cb(t, map[string]any{"swupdateaction": "check", "updatetime": "now"}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{`"idle", "isac", "isvv" or "upgrade"`, `"check"`}},
		{name: "action wrong case", body: cb(t, map[string]any{"swupdateaction": "UPGRADE", "updatetime": "now"}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{`"UPGRADE"`}},
		{name: "action empty", body: cb(t, map[string]any{"swupdateaction": ""}), wantErr: true, wantProp: "swupdateaction", wantMsg: []string{`not ""`}},
		{name: "isv alias", body: cb(t, map[string]any{"swupdateaction": "isv", "updatetime": "now"}), want: Update{Action: actp(ActionFetch), UpdateTime: timep(testNow), Now: true}},
		{name: "isvv", body: cb(t, map[string]any{"swupdateaction": "isvv", "updatetime": future}), want: Update{Action: actp(ActionFetch), UpdateTime: timep(futureT)}},
		{name: "isac", body: cb(t, map[string]any{"swupdateaction": "isac", "updatetime": future}), want: Update{Action: actp(ActionCheck), UpdateTime: timep(futureT)}},
		{name: "upgrade now", body: cb(t, map[string]any{"swupdateaction": "upgrade", "updatetime": "now"}), want: Update{Action: actp(ActionUpgrade), UpdateTime: timep(testNow), Now: true}},
		{name: "updateTime alias", body: cb(t, map[string]any{"swupdateaction": "upgrade", "updateTime": future}), want: Update{Action: actp(ActionUpgrade), UpdateTime: timep(futureT)}},
		{name: "both spellings", body: cb(t, map[string]any{"updateTime": future, "updatetime": future}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"both", "updatetime", "updateTime"}},
		{name: "both spellings, one invalid", body: cb(t, map[string]any{"updateTime": "bogus", "updatetime": future}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"both"}},

		// updatetime values.
		{name: "time alone", body: cb(t, map[string]any{"updatetime": future}), want: Update{UpdateTime: timep(futureT)}},
		{name: "time minute precision (draft form)", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30Z"}), want: Update{UpdateTime: timep(futureT)}},
		{name: "time minute precision with offset", body: cb(t, map[string]any{"updatetime": "2030-01-09T16:30+02:00"}), want: Update{UpdateTime: timep(futureT)}},
		{name: "time with offset normalised to UTC", body: cb(t, map[string]any{"updatetime": "2030-01-09T09:30:00-05:00"}), want: Update{UpdateTime: timep(futureT)}},
		{name: "time with fraction", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30:00.25Z"}), want: Update{UpdateTime: timep(futureT.Add(250 * time.Millisecond))}},
		{name: "time lowercase t and z", body: cb(t, map[string]any{"updatetime": "2030-01-09t14:30:00z"}), want: Update{UpdateTime: timep(futureT)}},
		{name: "time equal to now", body: cb(t, map[string]any{"updatetime": "2026-03-01T12:00:00Z"}), want: Update{UpdateTime: timep(testNow)}},
		{name: "time without zone", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30:00"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"no time zone"}},
		{name: "minute time without zone", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"no time zone"}},
		{name: "updateTime without zone names updateTime", body: cb(t, map[string]any{"updateTime": "2030-01-09T14:30"}), wantErr: true, wantProp: "updateTime", wantMsg: []string{"updateTime", "no time zone"}},
		{name: "date only", body: cb(t, map[string]any{"updatetime": "2030-01-09"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339", `"2030-01-09"`}},
		{name: "space instead of T", body: cb(t, map[string]any{"updatetime": "2030-01-09 14:30:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339"}},
		{name: "one-digit hour", body: cb(t, map[string]any{"updatetime": "2030-01-09T4:30:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339"}},
		{name: "offset without colon", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30:00+0100"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339"}},
		{name: "offset hour out of range", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30:00+24:00"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"offset out of range"}},
		{name: "offset minute out of range", body: cb(t, map[string]any{"updatetime": "2030-01-09T14:30:00+01:60"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"offset out of range"}},
		{name: "month out of range", body: cb(t, map[string]any{"updatetime": "2030-13-09T14:30:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"not a valid date-time", "month"}},
		{name: "day out of range", body: cb(t, map[string]any{"updatetime": "2030-02-30T14:30:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"not a valid date-time", "day"}},
		{name: "hour out of range", body: cb(t, map[string]any{"updatetime": "2030-01-09T25:30:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"not a valid date-time", "hour"}},
		{name: "words", body: cb(t, map[string]any{"updatetime": "tomorrow"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339", `"now" or "none"`, `not "tomorrow"`}},
		{name: "NOW uppercase", body: cb(t, map[string]any{"updatetime": "NOW"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339"}},
		{name: "empty time", body: cb(t, map[string]any{"updatetime": ""}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"RFC 3339"}},
		{name: "overlong time", body: cb(t, map[string]any{"updatetime": future + strings.Repeat("0", 60)}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"bytes long"}},
		{name: "past time", body: cb(t, map[string]any{"updatetime": "2020-01-01T00:00:00Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"updatetime is in the past", "2026-03-01T12:00:00Z"}},
		{name: "one second in the past", body: cb(t, map[string]any{"swupdateaction": "upgrade", "updatetime": "2026-03-01T11:59:59Z"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"in the past"}},
		{name: "past in another zone", body: cb(t, map[string]any{"updatetime": "2026-03-01T12:30:00+01:00"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"in the past"}},
		{name: "now alone", body: cb(t, map[string]any{"updatetime": "now"}), want: Update{UpdateTime: timep(testNow), Now: true}},
		{name: "none alone", body: cb(t, map[string]any{"updatetime": "none"}), want: Update{CancelTime: true}},

		// Combinations.
		{name: "none with upgrade", body: cb(t, map[string]any{"swupdateaction": "upgrade", "updatetime": "none"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{`"none"`, `"upgrade"`}},
		{name: "none with isac via updateTime", body: cb(t, map[string]any{"swupdateaction": "isac", "updateTime": "none"}), wantErr: true, wantProp: "updateTime", wantMsg: []string{`"none"`}},
		{name: "action without time", body: cb(t, map[string]any{"swupdateaction": "upgrade"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{`"upgrade"`, "needs an updatetime"}},
		{name: "action without time, with purl", body: cb(t, map[string]any{"swupdateaction": "isac", "purl": okPURL}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"needs an updatetime"}},
		{name: "idle alone cancels", body: cb(t, map[string]any{"swupdateaction": "idle"}), want: Update{Action: actp(ActionIdle)}},
		{name: "idle with none", body: cb(t, map[string]any{"swupdateaction": "idle", "updatetime": "none"}), want: Update{Action: actp(ActionIdle), CancelTime: true}},
		{name: "idle with a time", body: cb(t, map[string]any{"swupdateaction": "idle", "updatetime": future}), wantErr: true, wantProp: "updatetime", wantMsg: []string{`"idle"`, "cannot be scheduled"}},
		{name: "idle with now", body: cb(t, map[string]any{"swupdateaction": "idle", "updatetime": "now"}), wantErr: true, wantProp: "updatetime", wantMsg: []string{"cannot be scheduled"}},
		{name: "everything", body: cb(t, map[string]any{"purl": okPURL, "swupdateaction": "upgrade", "updatetime": future}), want: Update{PURL: strp(okPURL), Action: actp(ActionUpgrade), UpdateTime: timep(futureT)}},
		{name: "bad purl beats good action", body: cb(t, map[string]any{"purl": "nope", "swupdateaction": "upgrade", "updatetime": future}), wantErr: true, wantProp: "purl"},

		// purl.
		{name: "purl alone", body: cb(t, map[string]any{"purl": okPURL}), want: Update{PURL: strp(okPURL)}},
		{name: "purl empty means vendor URL", body: cb(t, map[string]any{"purl": ""}), want: Update{PURL: strp("")}},
		{name: "purl coaps with IPv6 and port", body: cb(t, map[string]any{"purl": "coaps://[::1]:5684/repo"}), want: Update{PURL: strp("coaps://[::1]:5684/repo")}},
		{name: "purl with query", body: cb(t, map[string]any{"purl": "https://h.example/r?channel=beta"}), want: Update{PURL: strp("https://h.example/r?channel=beta")}},
		{name: "purl ftp accepted at UPDATE", body: cb(t, map[string]any{"purl": "ftp://x"}), want: Update{PURL: strp("ftp://x")}},
		{name: "purl exactly at the limit", body: cb(t, map[string]any{"purl": long}), want: Update{PURL: strp(long)}},
		{name: "purl too long", body: cb(t, map[string]any{"purl": long + "a"}), wantErr: true, wantProp: "purl", wantMsg: []string{"513 bytes", "at most 512"}},
		{name: "purl longer limit by option", body: cb(t, map[string]any{"purl": long + "a"}), opts: ParseOptions{MaxPURLLength: 1024}, want: Update{PURL: strp(long + "a")}},
		{name: "purl relative path", body: cb(t, map[string]any{"purl": "/repo/targets"}), wantErr: true, wantProp: "purl", wantMsg: []string{"absolute URL"}},
		{name: "purl without scheme", body: cb(t, map[string]any{"purl": "updates.example.com/repo"}), wantErr: true, wantProp: "purl", wantMsg: []string{"absolute URL"}},
		{name: "purl without host", body: cb(t, map[string]any{"purl": "https:///repo"}), wantErr: true, wantProp: "purl", wantMsg: []string{"host"}},
		{name: "purl with port but no hostname", body: cb(t, map[string]any{"purl": "https://:443/repo"}), wantErr: true, wantProp: "purl", wantMsg: []string{"host"}},
		{name: "purl opaque", body: cb(t, map[string]any{"purl": "mailto:ops@example.com"}), wantErr: true, wantProp: "purl", wantMsg: []string{"absolute URL"}},
		{name: "purl with space", body: cb(t, map[string]any{"purl": "https://exa mple.com/"}), wantErr: true, wantProp: "purl", wantMsg: []string{"whitespace"}},
		{name: "purl with NUL", body: cb(t, map[string]any{"purl": "https://example.com/\x00"}), wantErr: true, wantProp: "purl", wantMsg: []string{"control"}},
		{name: "purl with newline", body: cb(t, map[string]any{"purl": "https://example.com/\n"}), wantErr: true, wantProp: "purl", wantMsg: []string{"whitespace"}},
		{name: "purl with credentials", body: cb(t, map[string]any{"purl": "https://user:secret@example.com/"}), wantErr: true, wantProp: "purl", wantMsg: []string{"user information"}},
		{name: "purl port out of range", body: cb(t, map[string]any{"purl": "https://example.com:99999/"}), wantErr: true, wantProp: "purl", wantMsg: []string{"invalid port"}},
		{name: "purl port zero", body: cb(t, map[string]any{"purl": "https://example.com:0/"}), wantErr: true, wantProp: "purl", wantMsg: []string{"invalid port"}},
		{name: "purl bad escape", body: cb(t, map[string]any{"purl": "https://example.com/%zz"}), wantErr: true, wantProp: "purl", wantMsg: []string{"not a valid URL"}},
		{name: "purl bad port syntax", body: cb(t, map[string]any{"purl": "https://example.com:http/"}), wantErr: true, wantProp: "purl", wantMsg: []string{"not a valid URL"}},
	}
	for _, p := range []string{PropNV, PropState, PropResult, PropLastUpdate, PropSigned, PropRT, PropIf, PropName, PropID, PropProgress, PropDetail} {
		cases = append(cases,
			parseCase{name: "read-only " + p, body: cb(t, map[string]any{p: "x"}), wantErr: true, wantProp: p, wantMsg: []string{p + " is read-only"}},
			parseCase{name: "read-only " + p + " next to a valid purl", body: cb(t, map[string]any{p: 1, "purl": okPURL}), wantErr: true, wantProp: p, wantMsg: []string{"read-only"}},
		)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUpdate(tc.body, testNow, tc.opts)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("ParseUpdate: %v", err)
				}
				if !equalUpdate(got, tc.want) {
					t.Fatalf("got %s, want %s", formatUpdate(got), formatUpdate(tc.want))
				}
				return
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("got (%s, %v), want an *Error", formatUpdate(got), err)
			}
			if se.Property != tc.wantProp {
				t.Errorf("Property = %q, want %q (message %q)", se.Property, tc.wantProp, se.Message)
			}
			if se.Message == "" {
				t.Error("empty Message")
			}
			for _, w := range tc.wantMsg {
				if !strings.Contains(se.Message, w) {
					t.Errorf("Message %q does not contain %q", se.Message, w)
				}
			}
			if !equalUpdate(got, Update{}) {
				t.Errorf("a refused UPDATE returned %s, want the zero Update", formatUpdate(got))
			}
		})
	}
}

// The clock is read in whatever zone the caller has; "now" comes back in UTC
// without a monotonic reading, so it persists and compares like any time.
func TestParseUpdateNowIsUTC(t *testing.T) {
	local := time.Now().In(time.FixedZone("X", 3*3600))
	u, err := ParseUpdate(cb(t, map[string]any{"updatetime": "now"}), local, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u.UpdateTime.Location() != time.UTC || !u.UpdateTime.Equal(local) {
		t.Fatalf("UpdateTime = %v, want %v in UTC", u.UpdateTime, local)
	}
	if s := u.UpdateTime.String(); strings.Contains(s, "m=") {
		t.Fatalf("UpdateTime keeps a monotonic reading: %s", s)
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Message: "the UPDATE is empty"}, "the UPDATE is empty"},
		{&Error{Property: "purl", Message: "purl is bad"}, "property purl: purl is bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}
