package swu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// encodeUpdate turns a parsed Update back into an UPDATE payload, in the
// canonical spellings.
func encodeUpdate(u Update) map[string]any {
	m := map[string]any{}
	if u.PURL != nil {
		m[PropPURL] = *u.PURL
	}
	if u.Action != nil {
		m[PropAction] = string(*u.Action)
	}
	switch {
	case u.Now:
		m[PropUpdateTime] = UpdateTimeNow
	case u.CancelTime:
		m[PropUpdateTime] = UpdateTimeNone
	case u.UpdateTime != nil:
		m[PropUpdateTime] = u.UpdateTime.Format(time.RFC3339Nano)
	}
	return m
}

// FuzzParseUpdate checks that ParseUpdate never panics, refuses only with an
// *Error and the zero Update, and that what it accepts survives a
// decode → encode → decode round trip unchanged. Seeds are in
// testdata/fuzz/FuzzParseUpdate.
func FuzzParseUpdate(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := ParseUpdate(body, testNow, ParseOptions{})
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Message == "" {
				t.Fatalf("refusal %T %q is not an *Error with a message", err, err)
			}
			if !equalUpdate(u, Update{}) {
				t.Fatalf("refusal returned %s", formatUpdate(u))
			}
			return
		}
		if equalUpdate(u, Update{}) {
			t.Fatal("accepted an UPDATE that asks for nothing")
		}
		if u.Now && (u.CancelTime || u.UpdateTime == nil || !u.UpdateTime.Equal(testNow)) {
			t.Fatalf("inconsistent now: %s", formatUpdate(u))
		}
		if u.UpdateTime != nil && (u.UpdateTime.Location() != time.UTC || u.UpdateTime.Before(testNow)) {
			t.Fatalf("updatetime not UTC or in the past: %s", formatUpdate(u))
		}
		b, err := ocf.Encode(encodeUpdate(u))
		if err != nil {
			t.Fatalf("encode %s: %v", formatUpdate(u), err)
		}
		u2, err := ParseUpdate(b, testNow, ParseOptions{})
		if err != nil {
			t.Fatalf("re-parse of %s: %v", formatUpdate(u), err)
		}
		if !equalUpdate(u, u2) {
			t.Fatalf("round trip changed %s into %s", formatUpdate(u), formatUpdate(u2))
		}
	})
}

// FuzzUpdateHandler drives the resource's POST handler with any body and
// interface: it never panics, always answers with a diagnostic on error,
// and reaches the controller exactly when — and only when — it answers 2.04.
func FuzzUpdateHandler(f *testing.F) {
	for _, seed := range []string{
		"\xa1dpurlx\x1ahttps://repo.example/r/abc",
		"\xa3dpurlshttps://x.example/nswupdateactiondisacjupdatetimecnow",
		"\xa1nswupdatestatedidle",
		"\xa0", "\x01", "",
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), IfBaseline)
	}
	f.Fuzz(func(t *testing.T, body []byte, iface string) {
		c := &fakeController{props: Properties{State: StateIdle, Action: ActionIdle}}
		r := newTestResource(c)
		if iface == "" {
			iface = IfRW
		}
		resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: iface, Body: body})
		calls := len(c.calls())
		switch resp.Code {
		case codes.Changed:
			if calls != 1 {
				t.Fatalf("2.04 after %d Apply calls", calls)
			}
		default:
			if calls != 0 {
				t.Fatalf("%v after %d Apply calls", resp.Code, calls)
			}
			d, ok := resp.Body.(ocf.Diagnostic)
			if !ok || d.Error == "" {
				t.Fatalf("%v without a diagnostic: %#v", resp.Code, resp.Body)
			}
		}
	})
}
