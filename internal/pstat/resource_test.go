package pstat

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// fakeController records triggers and reflects a successful one in tm and cm.
type fakeController struct {
	mu       sync.Mutex
	props    Properties
	triggers []swu.Action
	err      error
}

func (f *fakeController) Snapshot() Properties {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.props
}

func (f *fakeController) Trigger(_ context.Context, a swu.Action) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers = append(f.triggers, a)
	if f.err != nil {
		return f.err
	}
	f.props.TM = TMForAction(a)
	return nil
}

func (f *fakeController) calls() []swu.Action {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swu.Action(nil), f.triggers...)
}

func TestResourceDescription(t *testing.T) {
	r := NewResource(&fakeController{})
	if r.Href() != "/oic/sec/pstat" || !reflect.DeepEqual(r.Types(), []string{"oic.r.pstat"}) ||
		!reflect.DeepEqual(r.Interfaces(), []string{"oic.if.baseline"}) || !r.Observable() {
		t.Fatalf("got href %q rt %v if %v observable %v", r.Href(), r.Types(), r.Interfaces(), r.Observable())
	}
}

func TestResourceGet(t *testing.T) {
	p := Defaults()
	p.CM = CMForState(0, swu.StateNSA)
	r := NewResource(&fakeController{props: p})
	resp := r.Serve(context.Background(), &ocf.Request{Method: codes.GET, Interface: IfBaseline})
	if resp.Code != codes.Content || !reflect.DeepEqual(resp.Body, Represent(p)) {
		t.Fatalf("GET = %v %#v", resp.Code, resp.Body)
	}
}

func TestResourcePost(t *testing.T) {
	cases := []struct {
		name     string
		body     []byte
		ctrlErr  error
		wantCode codes.Code
		wantTrig []swu.Action
		wantTM   any    // tm in the 2.04 reply
		wantProp string // diagnostic, for errors
		wantMsg  string
	}{
		{name: "isac", body: cb(t, map[string]any{"tm": 256}), wantCode: codes.Changed, wantTrig: []swu.Action{swu.ActionCheck}, wantTM: uint64(256)},
		{name: "isvv", body: cb(t, map[string]any{"tm": 64}), wantCode: codes.Changed, wantTrig: []swu.Action{swu.ActionFetch}, wantTM: uint64(64)},
		{name: "upgrade", body: cb(t, map[string]any{"tm": 128}), wantCode: codes.Changed, wantTrig: []swu.Action{swu.ActionUpgrade}, wantTM: uint64(128)},
		{name: "several bits: furthest wins", body: cb(t, map[string]any{"tm": 256 | 64 | 128}), wantCode: codes.Changed, wantTrig: []swu.Action{swu.ActionUpgrade}, wantTM: uint64(128)},
		{name: "tm 0 is a no-op", body: cb(t, map[string]any{"tm": 0}), wantCode: codes.Changed, wantTrig: nil, wantTM: uint64(0)},
		{name: "unsupported bit", body: cb(t, map[string]any{"tm": 1 | 128}), wantCode: codes.BadRequest, wantProp: "tm", wantMsg: "not supported"},
		{name: "read-only cm", body: cb(t, map[string]any{"cm": 256}), wantCode: codes.BadRequest, wantProp: "cm", wantMsg: "read-only"},
		{name: "malformed", body: []byte{0xff}, wantCode: codes.BadRequest, wantMsg: "not valid CBOR"},
		{
			name: "controller refuses", body: cb(t, map[string]any{"tm": 256}),
			ctrlErr:  &swu.Error{Property: "tm", Message: "an update is in progress"},
			wantCode: codes.BadRequest, wantTrig: []swu.Action{swu.ActionCheck}, wantProp: "tm", wantMsg: "an update is in progress",
		},
		{
			name: "controller fails", body: cb(t, map[string]any{"tm": 64}),
			ctrlErr:  errors.New("persist: read-only file system"),
			wantCode: codes.InternalServerError, wantTrig: []swu.Action{swu.ActionFetch}, wantMsg: "read-only file system",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeController{props: Defaults(), err: tc.ctrlErr}
			resp := NewResource(f).Serve(context.Background(), &ocf.Request{Method: codes.POST, Interface: IfBaseline, Body: tc.body})
			if resp.Code != tc.wantCode {
				t.Fatalf("code %v, want %v (body %#v)", resp.Code, tc.wantCode, resp.Body)
			}
			if got := f.calls(); !reflect.DeepEqual(got, tc.wantTrig) {
				t.Errorf("Trigger calls %v, want %v", got, tc.wantTrig)
			}
			if tc.wantCode == codes.Changed {
				if m := resp.Body.(map[string]any); m[PropTM] != tc.wantTM {
					t.Errorf("reply tm %v, want %v", m[PropTM], tc.wantTM)
				}
				return
			}
			d, ok := resp.Body.(ocf.Diagnostic)
			if !ok || d.Property != tc.wantProp || !strings.Contains(d.Error, tc.wantMsg) {
				t.Errorf("diagnostic %#v, want property %q and %q", resp.Body, tc.wantProp, tc.wantMsg)
			}
		})
	}
}

func TestResourcePostCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeController{err: context.Canceled}
	resp := NewResource(f).Serve(ctx, &ocf.Request{Method: codes.POST, Body: cb(t, map[string]any{"tm": 128})})
	if resp.Code != codes.ServiceUnavailable {
		t.Fatalf("code %v, want 5.03", resp.Code)
	}
}

func TestResourceMethodNotAllowed(t *testing.T) {
	for _, m := range []codes.Code{codes.PUT, codes.DELETE} {
		f := &fakeController{}
		resp := NewResource(f).Serve(context.Background(), &ocf.Request{Method: m, Body: cb(t, map[string]any{"tm": 128})})
		if d, ok := resp.Body.(ocf.Diagnostic); resp.Code != codes.MethodNotAllowed || !ok || d.Error == "" {
			t.Errorf("%v: got %v %#v, want 4.05 with a diagnostic", m, resp.Code, resp.Body)
		}
		if len(f.calls()) != 0 {
			t.Errorf("%v triggered an action", m)
		}
	}
}
