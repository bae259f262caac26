package ocf

import (
	"slices"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

func TestDiscovery(t *testing.T) {
	swu := newFake("/oc/swu")
	swu.types = []string{"oic.r.softwareupdate"}
	swu.observable = true
	hidden := newFake("/hidden")
	hidden.hidden = true
	s, addr := startServer(t, testConfig(t), swu, hidden)
	cc := dial(t, addr, true)
	wantEP := "coap://" + addr

	tests := []struct {
		name      string
		path      string
		wantHrefs []string
	}{
		{"all discoverable, sorted", "/oic/res", []string{"/oc/swu", "/oic/d", "/oic/p", "/oic/res"}},
		{"rt filter", "/oic/res?rt=oic.r.softwareupdate", []string{"/oc/swu"}},
		{"two rt filters match either", "/oic/res?rt=oic.wk.d&rt=oic.wk.p", []string{"/oic/d", "/oic/p"}},
		{"res lists itself", "/oic/res?rt=oic.wk.res", []string{"/oic/res"}},
		{"no match is an empty list", "/oic/res?rt=nothing", []string{}},
		{"explicit ll interface", "/oic/res?if=oic.if.ll&rt=oic.wk.d", []string{"/oic/d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, cc, call{codes.GET, tc.path, -1, nil, nil})
			if resp.Code() != codes.Content {
				t.Fatalf("code = %v", resp.Code())
			}
			var links []link
			if err := Decode(body(t, resp), &links); err != nil {
				t.Fatalf("decode links: %v", err)
			}
			var hrefs []string
			for _, l := range links {
				hrefs = append(hrefs, l.Href)
				if l.Anchor != "ocf://"+testDI {
					t.Errorf("%s anchor = %q", l.Href, l.Anchor)
				}
				if len(l.EPS) != 1 || l.EPS[0].EP != wantEP {
					t.Errorf("%s eps = %v, want [%s]", l.Href, l.EPS, wantEP)
				}
				if len(l.RT) == 0 || len(l.IF) == 0 {
					t.Errorf("%s without rt or if", l.Href)
				}
			}
			if !slices.Equal(hrefs, tc.wantHrefs) && !(len(hrefs) == 0 && len(tc.wantHrefs) == 0) {
				t.Fatalf("hrefs = %v, want %v", hrefs, tc.wantHrefs)
			}
		})
	}

	// Policy bitmap: observable resources say so.
	resp := do(t, cc, call{codes.GET, "/oic/res", -1, nil, nil})
	var links []link
	if err := Decode(body(t, resp), &links); err != nil {
		t.Fatal(err)
	}
	bm := map[string]uint8{}
	for _, l := range links {
		bm[l.Href] = l.P.BM
	}
	want := map[string]uint8{"/oc/swu": 3, "/oic/d": 3, "/oic/p": 1, "/oic/res": 1}
	for href, w := range want {
		if bm[href] != w {
			t.Errorf("%s bm = %d, want %d", href, bm[href], w)
		}
	}

	// Baseline wraps the links with the resource's own properties.
	resp = do(t, cc, call{codes.GET, "/oic/res?if=oic.if.baseline&rt=oic.wk.p", -1, nil, nil})
	var base []resBaseline
	if err := Decode(body(t, resp), &base); err != nil {
		t.Fatalf("decode baseline: %v", err)
	}
	if len(base) != 1 || !slices.Equal(base[0].RT, []string{RTRes}) || !slices.Equal(base[0].IF, []string{IfLL, IfBaseline}) ||
		len(base[0].Links) != 1 || base[0].Links[0].Href != HrefPlatform {
		t.Fatalf("baseline = %+v", base)
	}

	if got := s.Endpoints(); !slices.Equal(got, []string{wantEP}) {
		t.Errorf("Endpoints() = %v, want [%s]", got, wantEP)
	}
}

func TestDeviceAndPlatform(t *testing.T) {
	_, addr := startServer(t, testConfig(t))
	cc := dial(t, addr, true)

	var d deviceRep
	if err := Decode(body(t, do(t, cc, call{codes.GET, "/oic/d", -1, nil, nil})), &d); err != nil {
		t.Fatal(err)
	}
	want := deviceRep{DI: testDI, N: "test device", PIID: testPIID, ICV: DefaultICV, DMV: DefaultDMV, DMNO: "model-1", SV: "1.0.0"}
	if !equalDevice(d, want) {
		t.Errorf("/oic/d = %+v, want %+v", d, want)
	}
	if err := Decode(body(t, do(t, cc, call{codes.GET, "/oic/d?if=oic.if.baseline", -1, nil, nil})), &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.RT, []string{RTDevice}) || !slices.Equal(d.IF, []string{IfR, IfBaseline}) {
		t.Errorf("/oic/d baseline rt/if = %v %v", d.RT, d.IF)
	}

	var p platformRep
	if err := Decode(body(t, do(t, cc, call{codes.GET, "/oic/p", -1, nil, nil})), &p); err != nil {
		t.Fatal(err)
	}
	wantP := platformRep{PI: testPI, MNMN: "ACME", MNMO: "m1", MNDT: "2024-05-01", MNFV: "fw1"}
	if p.PI != wantP.PI || p.MNMN != wantP.MNMN || p.MNMO != wantP.MNMO || p.MNDT != wantP.MNDT || p.MNFV != wantP.MNFV || p.MNOS != "" || p.RT != nil {
		t.Errorf("/oic/p = %+v, want %+v", p, wantP)
	}
	for _, m := range []codes.Code{codes.PUT, codes.DELETE} {
		if r := do(t, cc, call{m, "/oic/p", -1, nil, nil}); r.Code() != codes.MethodNotAllowed {
			t.Errorf("%v /oic/p = %v", m, r.Code())
		}
	}
}

func equalDevice(a, b deviceRep) bool {
	return a.DI == b.DI && a.N == b.N && a.PIID == b.PIID && a.ICV == b.ICV && a.DMV == b.DMV && a.DMNO == b.DMNO && a.SV == b.SV && a.RT == nil
}
