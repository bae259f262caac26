package agent

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/pstat"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// recorder collects the distinct states an observer saw, in order.
type recorder struct {
	mu     sync.Mutex
	states []string
	cms    []uint64
	last   client.Status
}

func (r *recorder) swu(resp client.Response, err error) {
	if err != nil {
		return
	}
	s, err := client.DecodeStatus(resp.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.states); n == 0 || r.states[n-1] != s.State {
		r.states = append(r.states, s.State)
	}
	r.last = s
}

func (r *recorder) pstat(resp client.Response, err error) {
	if err != nil {
		return
	}
	var p struct {
		CM uint64 `cbor:"cm"`
	}
	if decodeLooseTest(resp.Body, &p) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.cms); n == 0 || r.cms[n-1] != p.CM {
		r.cms = append(r.cms, p.CM)
	}
}

func (r *recorder) snapshot() ([]string, []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.states...), append([]uint64(nil), r.cms...)
}

// waitLen waits until the observers have seen n states and m cm values
// (or more), and returns them.
func (r *recorder) waitLen(t *testing.T, n, m int) ([]string, []uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		states, cms := r.snapshot()
		if len(states) >= n && len(cms) >= m || time.Now().After(deadline) {
			return states, cms
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSeen waits until the observers have seen state with pstat cm.
func (r *recorder) waitSeen(t *testing.T, state string, cm uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		ok := len(r.states) > 0 && r.states[len(r.states)-1] == state && len(r.cms) > 0 && r.cms[len(r.cms)-1] == cm
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			states, cms := r.snapshot()
			t.Fatalf("observers never saw %s with cm %d: states %v cm %v", state, cm, states, cms)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func observe(t *testing.T, h *harness) *recorder {
	rec := &recorder{}
	o1, err := h.conn.Observe(ctx(t), swu.DefaultHref, rec.swu)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := h.conn.Observe(ctx(t), pstat.Href, rec.pstat)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = o1.Cancel(c)
		_ = o2.Cancel(c)
	})
	return rec
}

// TestFigure2 runs the spec's typical upgrade sequence through CoAP: set purl
// and ask for upgrade now, then every step succeeds. Observers of the
// resource and of pstat see every state and cm value in order.
func TestFigure2(t *testing.T) {
	h := start(t, "", nil)
	rec := observe(t, h)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "upgrade", "updatetime": "now"})

	c := h.steps.expect(t, "check")
	if c.req.PURL != "https://repo.example/r" || c.req.Model != "model-1" || c.req.InstalledVersion != "1.0.0" {
		t.Errorf("check request %+v", c.req)
	}
	c.answer(stepReply{target: target11, found: true})
	f := h.steps.expect(t, "fetch")
	if f.target != target11 {
		t.Errorf("fetch target %+v", f.target)
	}
	f.progress(500, 1234)
	if s := h.waitState(swu.StateSVV); s.Progress == nil || s.Progress.Total != 1234 || s.NV != "1.1.0" {
		t.Errorf("during download: %+v", s)
	}
	rec.waitSeen(t, "svv", 256)
	f.answer(stepReply{path: "/staged/pkg"})
	i := h.steps.expect(t, "install")
	if i.path != "/staged/pkg" || i.target != target11 {
		t.Errorf("install %q %+v", i.path, i.target)
	}
	if s := h.status(); s.State != "upgrading" || s.Action != "upgrade" {
		t.Errorf("installing: %+v", s)
	}
	rec.waitSeen(t, "upgrading", 256|64|128)
	i.answer(stepReply{})
	h.steps.expect(t, "confirm").answer(stepReply{})
	s := h.waitState(swu.StateIdle)
	if s.Result != 1 || s.NV != "" || s.Action != "idle" || s.Progress != nil || !strings.Contains(s.Detail, "1.1.0") {
		t.Errorf("after upgrade: %+v", s)
	}
	if !strings.HasPrefix(s.LastUpdate, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("lastupdate %q not today", s.LastUpdate)
	}
	d, err := h.conn.Device(ctx(t))
	if err != nil || d.SoftwareVersion != "1.1.0" {
		t.Errorf("/oic/d sv = %q, %v", d.SoftwareVersion, err)
	}

	// isvv straight from idle asks for the newest package, not the one
	// just installed.
	h.mustPost(map[string]any{"swupdateaction": "isvv", "updatetime": "now"})
	if f := h.steps.expect(t, "fetch"); f.target != (step.Target{}) {
		t.Errorf("isvv after an upgrade fetched %+v, want the newest (zero target)", f.target)
	} else {
		f.answer(stepReply{err: &step.Error{Err: step.ErrNothingNewer}})
	}

	wantStates := []string{"idle", "nsa", "svv", "sva", "upgrading", "idle"}
	wantCM := []uint64{0, 256, 256 | 64, 256 | 64 | 128, 0}
	wantStates = append(wantStates, "svv", "idle")
	wantCM = append(wantCM, 256, 0)
	// Every state and cm value, in order, also nsa and sva, which last only
	// an instant: the server queues a notification per change.
	states, cms := rec.waitLen(t, len(wantStates), len(wantCM))
	if !slices.Equal(states, wantStates) || !slices.Equal(cms, wantCM) {
		t.Fatalf("observed states %v cm %v\nwant %v cm %v", states, cms, wantStates, wantCM)
	}
}

// TestStepFailures: every step failure lands in idle with its result and
// detail, nv cleared, and the installed version unchanged.
func TestStepFailures(t *testing.T) {
	tests := []struct {
		name   string
		steps  []string // steps that succeed before the failing one
		fail   string
		err    error
		result int
	}{
		{"check unreachable", nil, "check", &step.Error{Result: swu.ResultConnectionLost, Detail: "cannot reach repo"}, 4},
		{"check http 404", nil, "check", &step.Error{Result: 404, Detail: "repository answered 404"}, 404},
		{"fetch validation", []string{"check"}, "fetch", &step.Error{Result: swu.ResultValidation, Detail: "hash mismatch"}, 5},
		{"fetch no flash", []string{"check"}, "fetch", &step.Error{Result: swu.ResultNoFlash, Detail: "disk full"}, 3},
		{"install plain error", []string{"check", "fetch"}, "install", errors.New("boom"), 8},
		{"install no RAM", []string{"check", "fetch"}, "install", &step.Error{Result: swu.ResultNoRAM, Detail: "oom"}, 2},
		{"health check fails, rolled back", []string{"check", "fetch", "install"}, "confirm", &step.Error{Result: 8, Detail: "health check failed; rolled back to 1.0.0"}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, "", nil)
			h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "upgrade", "updatetime": "now"})
			for _, s := range tt.steps {
				h.steps.expect(t, s).answer(stepReply{target: target11, found: true, path: "/p"})
			}
			h.steps.expect(t, tt.fail).answer(stepReply{err: tt.err})
			s := waitResult(t, h, tt.result)
			want := tt.err.Error()
			if s.NV != "" || !strings.Contains(s.Detail, want) {
				t.Errorf("got result %d nv %q detail %q; want %d, detail %q", s.Result, s.NV, s.Detail, tt.result, want)
			}
			if d, _ := h.conn.Device(ctx(t)); d.SoftwareVersion != "1.0.0" {
				t.Errorf("sv = %q after a failure", d.SoftwareVersion)
			}
		})
	}
}

// TestPURLResolution: an empty purl uses the vendor URL, or fails with 6;
// an unsupported scheme fails with 7 at run time.
func TestPURLResolution(t *testing.T) {
	h := start(t, "", nil, withVendorURL("https://vendor.example/repo"))
	h.mustPost(map[string]any{"purl": "", "swupdateaction": "isac", "updatetime": "now"})
	if c := h.steps.expect(t, "check"); c.req.PURL != "https://vendor.example/repo" {
		t.Errorf("check used %q", c.req.PURL)
	} else {
		c.answer(stepReply{found: false})
	}
	if s := h.waitState(swu.StateIdle); s.Result != 0 {
		t.Errorf("nothing newer: result %d", s.Result)
	}

	h2 := start(t, "", nil)
	h2.mustPost(map[string]any{"purl": "", "swupdateaction": "isac", "updatetime": "now"})
	waitResult(t, h2, 6)
	h2.mustPost(map[string]any{"purl": "ftp://repo.example/x", "swupdateaction": "isac", "updatetime": "now"})
	waitResult(t, h2, 7)
	h2.steps.none(t)
}

func waitResult(t *testing.T, h *harness, want int) client.Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.status()
		if s.Result == want && s.State == "idle" && s.Action == "idle" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want result %d", s, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCheckOnlyStopsAtNSA: isac finds a version and stops; isvv then
// downloads and stops at sva; upgrade installs.
func TestCheckOnlyStopsAtNSA(t *testing.T) {
	h := start(t, "", nil)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isac", "updatetime": "now"})
	h.steps.expect(t, "check").answer(stepReply{target: target11, found: true})
	s := h.waitState(swu.StateNSA)
	if s.NV != "1.1.0" || s.Action != "idle" || s.Result != 0 {
		t.Errorf("nsa: %+v", s)
	}
	if cm := pstatCM(t, h); cm != 256 {
		t.Errorf("nsa: cm %d, want 256", cm)
	}
	h.steps.none(t)
	h.mustPost(map[string]any{"swupdateaction": "isvv", "updatetime": "now"})
	h.steps.expect(t, "fetch").answer(stepReply{path: "/p"})
	if s := h.waitState(swu.StateSVA); s.Action != "idle" {
		t.Errorf("sva: %+v", s)
	}
	if cm := pstatCM(t, h); cm != 256|64 {
		t.Errorf("sva: cm %d, want 320", cm)
	}
	h.steps.none(t)
	// pstat tm bit 128 starts the install.
	if _, err := h.conn.Post(ctx(t), pstat.Href, map[string]any{"tm": 128}); err != nil {
		t.Fatal(err)
	}
	h.steps.expect(t, "install").answer(stepReply{})
	h.steps.expect(t, "confirm").answer(stepReply{})
	if s := waitResult(t, h, 1); s.State != "idle" {
		t.Errorf("after install: %+v", s)
	}
}

// TestFetchNothingNewer: isvv straight from idle when the repository has
// nothing newer ends in idle with result 0, not a failure.
func TestFetchNothingNewer(t *testing.T) {
	h := start(t, "", nil)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isvv", "updatetime": "now"})
	h.steps.expect(t, "fetch").answer(stepReply{err: &step.Error{Result: 0, Detail: "nothing newer", Err: step.ErrNothingNewer}})
	s := waitResult(t, h, 0)
	if s.NV != "" || !strings.Contains(s.Detail, "no version newer than 1.0.0") {
		t.Errorf("after fetch with nothing newer: %+v", s)
	}
}

func pstatCM(t *testing.T, h *harness) uint64 {
	t.Helper()
	r, err := h.conn.Get(ctx(t), pstat.Href)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		CM uint64 `cbor:"cm"`
	}
	if err := decodeLooseTest(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p.CM
}

// TestRefusals: requests the state cannot take get 4.00 with a diagnostic
// and change nothing.
func TestRefusals(t *testing.T) {
	h := start(t, "", nil)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "upgrade", "updatetime": "now"})
	h.steps.expect(t, "check").answer(stepReply{target: target11, found: true})
	h.steps.expect(t, "fetch").answer(stepReply{path: "/p"})
	inst := h.steps.expect(t, "install")
	before := h.status()
	for _, body := range []map[string]any{
		{"swupdateaction": "isac", "updatetime": "now"},
		{"swupdateaction": "upgrade", "updatetime": "now"},
		{"swupdateaction": "idle"},
		{"purl": "https://other.example/r"},
		{"updatetime": "2099-01-01T00:00:00Z"},
	} {
		_, err := h.post(body)
		var de *client.DeviceError
		if !errors.As(err, &de) || de.Code != codes.BadRequest || de.Message == "" || de.Property == "" {
			t.Errorf("POST %v while upgrading: %v", body, err)
		}
	}
	if _, err := h.conn.Post(ctx(t), pstat.Href, map[string]any{"tm": 256}); err == nil {
		t.Error("pstat trigger while upgrading accepted")
	}
	if after := h.status(); after != before {
		t.Errorf("refusals changed the resource:\n%+v\n%+v", before, after)
	}
	inst.answer(stepReply{})
	h.steps.expect(t, "confirm").answer(stepReply{})
	waitResult(t, h, 1)
}

// TestCancel: swupdateaction idle stops a download and discards it.
func TestCancel(t *testing.T) {
	h := start(t, "", nil)
	h.mustPost(map[string]any{"purl": "https://repo.example/r", "swupdateaction": "isvv", "updatetime": "now"})
	h.steps.expect(t, "fetch") // left hanging: cancelled below
	h.waitState(swu.StateSVV)
	h.mustPost(map[string]any{"swupdateaction": "idle"})
	s := h.waitState(swu.StateIdle)
	if s.Result != 0 || s.Action != "idle" || h.steps.discards.Load() == 0 {
		t.Errorf("after cancel: %+v, discards %d", s, h.steps.discards.Load())
	}
}

// TestBaselineAndDiscovery: the resource is found through /oic/res by rt
// and its baseline representation carries rt and if.
func TestBaselineAndDiscovery(t *testing.T) {
	h := start(t, "", nil)
	href, err := h.conn.FindResource(ctx(t), swu.ResourceType)
	if err != nil || href != swu.DefaultHref {
		t.Fatalf("FindResource = %q, %v", href, err)
	}
	r, err := h.conn.Get(ctx(t), href, "if=oic.if.baseline")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := decodeLooseTest(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m["rt"], []any{"oic.r.softwareupdate"}) || m["signed"] != "vendor" {
		t.Errorf("baseline: %v", m)
	}
	if _, err := h.conn.Get(ctx(t), href, "if=oic.if.ll"); !isCode(err, codes.Forbidden) {
		t.Errorf("if=oic.if.ll: %v", err)
	}
	if _, err := h.conn.Get(ctx(t), ocf.HrefPlatform); err != nil {
		t.Errorf("/oic/p: %v", err)
	}
}

func isCode(err error, c codes.Code) bool {
	var de *client.DeviceError
	return errors.As(err, &de) && de.Code == c
}

// TestDeviceID: a configured di is taken at the first start and kept; a
// data dir of another device is refused rather than silently re-identified.
func TestDeviceID(t *testing.T) {
	const id = "0f5a6f3e-1d2c-4b5a-8e9f-0000000000d1"
	h := start(t, "", nil, withDeviceID(strings.ToUpper(id)))
	if d, err := h.conn.Device(ctx(t)); err != nil || d.ID != id {
		t.Fatalf("di %q, %v; want %s", d.ID, err, id)
	}
	h.stop()
	h2 := start(t, h.dir, nil, withDeviceID(id))
	h2.stop()
	steps := newFakeSteps()
	_, err := New(Config{DataDir: h.dir, CoAPAddr: "127.0.0.1:0", DeviceID: "0f5a6f3e-1d2c-4b5a-8e9f-0000000000d2",
		Device:  Device{Model: "m", SoftwareVersion: "1", Manufacturer: "x"},
		Checker: steps, Fetcher: steps, Installer: steps})
	if err == nil || !strings.Contains(err.Error(), "belongs to device "+id) {
		t.Fatalf("another device id on the same data dir: %v", err)
	}
	if _, err := New(Config{DataDir: t.TempDir(), CoAPAddr: "127.0.0.1:0", DeviceID: "not-a-uuid",
		Device:  Device{Model: "m", SoftwareVersion: "1", Manufacturer: "x"},
		Checker: steps, Fetcher: steps, Installer: steps}); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Fatalf("bad device id: %v", err)
	}
}

// TestStopDuringRecovery: cancelling Run at any moment, even before the
// recovery ran, is a clean stop and not an error.
func TestStopDuringRecovery(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		steps := newFakeSteps()
		a, err := New(Config{DataDir: dir, CoAPAddr: "127.0.0.1:0",
			Device:  Device{Model: "m", SoftwareVersion: "1", Manufacturer: "x"},
			Checker: steps, Fetcher: steps, Installer: steps})
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(context.Background())
		// Stop before recovery, and let the loop end first, so that Run's
		// wait for the recovery sees the loop gone as often as the ctx.
		a.cfg.Ready = func([]string) { cancel(); <-a.stopped }
		if err := a.Run(c); err != nil {
			t.Fatalf("run %d: Run = %v, want nil after cancel", i, err)
		}
	}
}
