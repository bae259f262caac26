package swu

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// fakeController records every Apply and, when it succeeds, applies the
// purl and action to its properties like the agent would.
type fakeController struct {
	mu      sync.Mutex
	props   Properties
	applied []Update
	err     error // returned by Apply when set; nothing is applied then
}

func (f *fakeController) Snapshot() Properties {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.props
}

func (f *fakeController) Apply(_ context.Context, u Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, u)
	if f.err != nil {
		return f.err
	}
	if u.PURL != nil {
		f.props.PURL = *u.PURL
	}
	if u.Action != nil {
		f.props.Action = *u.Action
	}
	if u.UpdateTime != nil {
		f.props.UpdateTime = *u.UpdateTime
	}
	return nil
}

func (f *fakeController) calls() []Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Update(nil), f.applied...)
}

func newTestResource(c Controller) *Resource {
	return NewResource("", c, ResourceOptions{Now: func() time.Time { return testNow }})
}

func TestResourceDescription(t *testing.T) {
	r := newTestResource(&fakeController{})
	if r.Href() != "/oc/swu" {
		t.Errorf("default Href = %q, want /oc/swu", r.Href())
	}
	if got := NewResource("/x/update", &fakeController{}, ResourceOptions{}).Href(); got != "/x/update" {
		t.Errorf("Href = %q, want /x/update", got)
	}
	if !reflect.DeepEqual(r.Types(), []string{"oic.r.softwareupdate"}) {
		t.Errorf("Types = %v", r.Types())
	}
	if !reflect.DeepEqual(r.Interfaces(), []string{"oic.if.rw", "oic.if.baseline"}) {
		t.Errorf("Interfaces = %v, want rw first (the default)", r.Interfaces())
	}
	if !r.Observable() {
		t.Error("not observable")
	}
}

func TestResourceGet(t *testing.T) {
	props := Properties{NV: "2.0", PURL: "https://h.example/r", State: StateNSA, Action: ActionIdle, Signed: "vendor", Name: "dev"}
	r := newTestResource(&fakeController{props: props})
	for _, iface := range []string{IfRW, IfBaseline} {
		resp := r.Serve(context.Background(), &ocf.Request{Method: codes.GET, Interface: iface})
		if resp.Code != codes.Content {
			t.Fatalf("GET %s: code %v, want 2.05", iface, resp.Code)
		}
		if want := Represent(props, iface); !reflect.DeepEqual(resp.Body, want) {
			t.Errorf("GET %s body = %#v, want %#v", iface, resp.Body, want)
		}
	}
}

func TestResourcePostSuccess(t *testing.T) {
	f := &fakeController{props: Properties{State: StateIdle}}
	r := newTestResource(f)
	body := cb(t, map[string]any{"purl": "https://h.example/r", "swupdateaction": "upgrade", "updatetime": "now"})
	resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfRW, Body: body})
	if resp.Code != codes.Changed {
		t.Fatalf("code %v (body %#v), want 2.04", resp.Code, resp.Body)
	}
	calls := f.calls()
	want := Update{PURL: strp("https://h.example/r"), Action: actp(ActionUpgrade), UpdateTime: timep(testNow), Now: true}
	if len(calls) != 1 || !equalUpdate(calls[0], want) {
		t.Fatalf("Apply calls = %d (%v), want one with %s", len(calls), calls, formatUpdate(want))
	}
	// The reply shows the state after Apply.
	m, ok := resp.Body.(map[string]any)
	if !ok || m[PropPURL] != "https://h.example/r" || m[PropAction] != "upgrade" {
		t.Fatalf("reply body %#v does not show the applied update", resp.Body)
	}
	if _, ok := m[PropRT]; ok {
		t.Error("rw reply carries rt")
	}
}

func TestResourcePostBaselineReply(t *testing.T) {
	f := &fakeController{}
	r := newTestResource(f)
	resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfBaseline, Body: cb(t, map[string]any{"purl": ""})})
	if resp.Code != codes.Changed {
		t.Fatalf("code %v, want 2.04", resp.Code)
	}
	if m := resp.Body.(map[string]any); m[PropRT] == nil {
		t.Errorf("baseline reply lacks rt: %#v", m)
	}
}

func TestResourcePostRefused(t *testing.T) {
	cases := []struct {
		name     string
		body     []byte
		ctrlErr  error
		wantCode codes.Code
		wantProp string
		wantMsg  string
		applied  int // Apply calls expected
	}{
		{name: "no body", body: nil, wantCode: codes.BadRequest, wantMsg: "no payload"},
		{name: "malformed CBOR", body: []byte{0xa1}, wantCode: codes.BadRequest, wantMsg: "not valid CBOR"},
		{name: "read-only", body: cb(t, map[string]any{"swupdatestate": "idle"}), wantCode: codes.BadRequest, wantProp: "swupdatestate", wantMsg: "read-only"},
		{name: "past time", body: cb(t, map[string]any{"swupdateaction": "upgrade", "updatetime": "2026-03-01T11:00:00Z"}), wantCode: codes.BadRequest, wantProp: "updatetime", wantMsg: "in the past"},
		{name: "invalid among valid", body: cb(t, map[string]any{"purl": "https://ok.example/", "swupdateaction": "nope", "updatetime": "now"}), wantCode: codes.BadRequest, wantProp: "swupdateaction"},
		{
			name: "controller refuses", body: cb(t, map[string]any{"swupdateaction": "isac", "updatetime": "now"}),
			ctrlErr:  &Error{Property: PropAction, Message: "an update is in progress"},
			wantCode: codes.BadRequest, wantProp: PropAction, wantMsg: "an update is in progress", applied: 1,
		},
		{
			name: "controller refuses, wrapped", body: cb(t, map[string]any{"updatetime": "now"}),
			ctrlErr:  fmt.Errorf("apply: %w", &Error{Property: PropUpdateTime, Message: "no action is pending"}),
			wantCode: codes.BadRequest, wantProp: PropUpdateTime, wantMsg: "no action is pending", applied: 1,
		},
		{
			name: "controller fails", body: cb(t, map[string]any{"purl": ""}),
			ctrlErr:  errors.New("persist state: disk full"),
			wantCode: codes.InternalServerError, wantMsg: "disk full", applied: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeController{err: tc.ctrlErr, props: Properties{PURL: "https://before.example/"}}
			r := newTestResource(f)
			resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfRW, Body: tc.body})
			checkDiag(t, resp, tc.wantCode, tc.wantProp, tc.wantMsg)
			if n := len(f.calls()); n != tc.applied {
				t.Errorf("Apply called %d times, want %d", n, tc.applied)
			}
			if got := f.Snapshot().PURL; got != "https://before.example/" {
				t.Errorf("purl changed to %q by a refused UPDATE", got)
			}
		})
	}
}

func TestResourcePostCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeController{err: context.Canceled}
	resp := newTestResource(f).Serve(ctx, &ocf.Request{Method: codes.POST, Interface: IfRW, Body: cb(t, map[string]any{"purl": ""})})
	checkDiag(t, resp, codes.ServiceUnavailable, "", "shutting down")
}

// The clock comes from the options, not from time.Now.
func TestResourceUsesInjectedClock(t *testing.T) {
	body := cb(t, map[string]any{"updatetime": "2030-01-01T00:00:00Z"})
	for _, tc := range []struct {
		now  time.Time
		want codes.Code
	}{
		{time.Date(2029, 12, 31, 23, 59, 59, 0, time.UTC), codes.Changed},
		{time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC), codes.BadRequest},
	} {
		r := NewResource("", &fakeController{}, ResourceOptions{Now: func() time.Time { return tc.now }})
		if resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfRW, Body: body}); resp.Code != tc.want {
			t.Errorf("now %v: code %v, want %v", tc.now, resp.Code, tc.want)
		}
	}
}

func TestResourceParseOptions(t *testing.T) {
	purl := "https://example.com/" + strings.Repeat("a", 600)
	body := cb(t, map[string]any{"purl": purl})
	f := &fakeController{}
	r := NewResource("", f, ResourceOptions{Parse: ParseOptions{MaxPURLLength: 1024}})
	if resp := r.Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfRW, Body: body}); resp.Code != codes.Changed {
		t.Fatalf("code %v, want 2.04 with a raised purl limit", resp.Code)
	}
}

func TestResourceMethodNotAllowed(t *testing.T) {
	for _, m := range []codes.Code{codes.PUT, codes.DELETE} {
		f := &fakeController{}
		resp := newTestResource(f).Serve(context.Background(), &ocf.Request{Method: m, Interface: IfRW, Body: cb(t, map[string]any{"purl": ""})})
		checkDiag(t, resp, codes.MethodNotAllowed, "", "use GET or POST")
		if n := len(f.calls()); n != 0 {
			t.Errorf("%v: Apply called %d times", m, n)
		}
	}
}

func checkDiag(t *testing.T, resp ocf.Response, code codes.Code, prop, msg string) {
	t.Helper()
	if resp.Code != code {
		t.Fatalf("code %v, want %v (body %#v)", resp.Code, code, resp.Body)
	}
	d, ok := resp.Body.(ocf.Diagnostic)
	if !ok {
		t.Fatalf("body %#v is not a Diagnostic", resp.Body)
	}
	if d.Property != prop {
		t.Errorf("diagnostic property %q, want %q (error %q)", d.Property, prop, d.Error)
	}
	if d.Error == "" || !strings.Contains(d.Error, msg) {
		t.Errorf("diagnostic error %q, want it to contain %q", d.Error, msg)
	}
}
