package pstat

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestCMForState(t *testing.T) {
	// Table 3 of the draft.
	want := map[swu.State]uint64{
		swu.StateIdle:      0,
		swu.StateNSA:       256,
		swu.StateSVV:       256,
		swu.StateSVA:       256 | 64,
		swu.StateUpgrading: 256 | 64 | 128,
	}
	// Bases: nothing, every update bit (must be cleared where Table 3 says
	// 0), onboarding bits (must survive), and everything.
	bases := []uint64{0, UpdateBits, 1 | 2 | 4 | 8 | 16 | 32, 1 << 40, ^uint64(0)}
	for s, bits := range want {
		for _, base := range bases {
			got := CMForState(base, s)
			if got&UpdateBits != bits {
				t.Errorf("CMForState(%#x, %s): update bits %#x, want %#x", base, s, got&UpdateBits, bits)
			}
			if got&^UpdateBits != base&^UpdateBits {
				t.Errorf("CMForState(%#x, %s) = %#x: other bits changed", base, s, got)
			}
		}
	}
	if got := CMForState(2|UpdateBits, swu.State("bogus")); got != 2 {
		t.Errorf("unknown state: CMForState = %#x, want 0x2 (no update bits)", got)
	}
}

// A walk through a whole update: every transition leaves onboarding bits alone.
func TestCMForStateWalk(t *testing.T) {
	const onboarding = 2 | 32
	cm := uint64(onboarding)
	for _, step := range []struct {
		s    swu.State
		want uint64
	}{
		{swu.StateNSA, onboarding | 256},
		{swu.StateSVV, onboarding | 256},
		{swu.StateSVA, onboarding | 256 | 64},
		{swu.StateUpgrading, onboarding | 256 | 64 | 128},
		{swu.StateIdle, onboarding},
		{swu.StateSVA, onboarding | 256 | 64}, // a fresh isvv from idle
		{swu.StateNSA, onboarding | 256},      // validation failed back to nsa
	} {
		cm = CMForState(cm, step.s)
		if cm != step.want {
			t.Fatalf("after %s: cm %#x, want %#x", step.s, cm, step.want)
		}
	}
}

func TestTMForAction(t *testing.T) {
	for _, tc := range []struct {
		a    swu.Action
		want uint64
	}{
		{swu.ActionIdle, 0},
		{swu.ActionCheck, 256},
		{swu.ActionFetch, 64},
		{swu.ActionUpgrade, 128},
		{swu.Action("bogus"), 0},
		{swu.Action(""), 0},
	} {
		if got := TMForAction(tc.a); got != tc.want {
			t.Errorf("TMForAction(%q) = %d, want %d", tc.a, got, tc.want)
		}
	}
}

func TestActionForTM(t *testing.T) {
	for _, tc := range []struct {
		tm      uint64
		want    swu.Action
		wantErr []string // substrings; nil: no error
	}{
		{0, swu.ActionIdle, nil},
		{256, swu.ActionCheck, nil},
		{64, swu.ActionFetch, nil},
		{128, swu.ActionUpgrade, nil},
		{256 | 64, swu.ActionFetch, nil},
		{256 | 128, swu.ActionUpgrade, nil},
		{64 | 128, swu.ActionUpgrade, nil},
		{256 | 64 | 128, swu.ActionUpgrade, nil},
		{1, "", []string{"tm bits 1 are not supported"}},
		{2 | 128, "", []string{"tm bits 2 are"}},
		{1 | 2 | 32 | 256, "", []string{"1, 2 and 32"}},
		{512, "", []string{"512"}},
		{1 << 63, "", []string{"9223372036854775808"}},
	} {
		got, err := ActionForTM(tc.tm)
		if tc.wantErr == nil {
			if err != nil || got != tc.want {
				t.Errorf("ActionForTM(%d) = (%q, %v), want %q", tc.tm, got, err, tc.want)
			}
			continue
		}
		var se *swu.Error
		if !errors.As(err, &se) || se.Property != "tm" {
			t.Errorf("ActionForTM(%d) error = %v, want an *swu.Error about tm", tc.tm, err)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(se.Message, w) {
				t.Errorf("ActionForTM(%d) message %q lacks %q", tc.tm, se.Message, w)
			}
		}
		if got != "" {
			t.Errorf("ActionForTM(%d) returned action %q with an error", tc.tm, got)
		}
	}
}

// Triggering an action through tm and reading it back give the same bit.
func TestTMRoundTrip(t *testing.T) {
	for _, a := range []swu.Action{swu.ActionIdle, swu.ActionCheck, swu.ActionFetch, swu.ActionUpgrade} {
		got, err := ActionForTM(TMForAction(a))
		if err != nil || got != a {
			t.Errorf("ActionForTM(TMForAction(%s)) = (%s, %v)", a, got, err)
		}
	}
}

func TestRepresent(t *testing.T) {
	p := Defaults()
	p.CM = CMForState(0, swu.StateSVA)
	p.TM = TMForAction(swu.ActionUpgrade)
	want := map[string]any{
		"dos":        map[string]any{"s": uint64(3), "p": false},
		"isop":       true,
		"cm":         uint64(320),
		"tm":         uint64(128),
		"om":         uint64(4),
		"sm":         uint64(4),
		"rowneruuid": "00000000-0000-0000-0000-000000000000",
		"rt":         []string{"oic.r.pstat"},
		"if":         []string{"oic.if.baseline"},
	}
	got := Represent(p)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Represent:\n got  %#v\n want %#v", got, want)
	}
	if _, err := ocf.Encode(got); err != nil {
		t.Fatalf("encode: %v", err)
	}
	// An empty owner is shown as the nil UUID, a set one as is.
	if got := Represent(Properties{})["rowneruuid"]; got != NilUUID {
		t.Errorf("empty rowneruuid represented as %v", got)
	}
	if got := Represent(Properties{RownerUUID: "5f0c8b2e-1111-4222-8333-944455556666"})["rowneruuid"]; got != "5f0c8b2e-1111-4222-8333-944455556666" {
		t.Errorf("rowneruuid represented as %v", got)
	}
}
