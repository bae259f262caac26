package agent

import (
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// TestRecovery stops the agent in each state with a step running, starts a
// new one on the same data dir, and checks the recovery rule: a check is
// run again, a download resumes, a waiting package waits, an install is
// confirmed or rolled back.
func TestRecovery(t *testing.T) {
	tests := []struct {
		name     string
		drive    func(t *testing.T, h *harness) // leaves a step hanging
		state    swu.State                      // state persisted at the stop
		recovery string                         // step the new agent runs; "" none
		answer   stepReply
		want     swu.State
		result   int
	}{
		{"checking", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "upgrade", "updatetime": "now"})
			h.steps.expect(t, "check")
		}, swu.StateIdle, "check", stepReply{found: false}, swu.StateIdle, 0},
		{"nsa", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "isac", "updatetime": "now"})
			h.steps.expect(t, "check").answer(stepReply{target: target11, found: true})
			h.waitState(swu.StateNSA)
		}, swu.StateNSA, "", stepReply{}, swu.StateNSA, 0},
		{"svv resumes", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "isvv", "updatetime": "now"})
			h.steps.expect(t, "fetch")
		}, swu.StateSVV, "fetch", stepReply{path: "/p"}, swu.StateSVA, 0},
		{"svv fails after restart", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "isvv", "updatetime": "now"})
			h.steps.expect(t, "fetch")
		}, swu.StateSVV, "fetch", stepReply{err: &step.Error{Result: 5, Detail: "bad hash"}}, swu.StateIdle, 5},
		{"sva waits", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "isvv", "updatetime": "now"})
			h.steps.expect(t, "fetch").answer(stepReply{path: "/p"})
			h.waitState(swu.StateSVA)
		}, swu.StateSVA, "", stepReply{}, swu.StateSVA, 0},
		{"upgrading confirmed", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "upgrade", "updatetime": "now"})
			h.steps.expect(t, "check").answer(stepReply{target: target11, found: true})
			h.steps.expect(t, "fetch").answer(stepReply{path: "/p"})
			h.steps.expect(t, "install")
		}, swu.StateUpgrading, "confirm", stepReply{}, swu.StateIdle, 1},
		{"upgrading rolled back", func(t *testing.T, h *harness) {
			h.mustPost(map[string]any{"purl": "https://r.example", "swupdateaction": "upgrade", "updatetime": "now"})
			h.steps.expect(t, "check").answer(stepReply{target: target11, found: true})
			h.steps.expect(t, "fetch").answer(stepReply{path: "/p"})
			h.steps.expect(t, "install")
		}, swu.StateUpgrading, "confirm", stepReply{err: &step.Error{Result: 8, Detail: "health check failed; rolled back"}}, swu.StateIdle, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, "", nil)
			tt.drive(t, h)
			if s := h.status(); s.State != string(tt.state) {
				t.Fatalf("before stop: %+v", s)
			}
			h.stop()

			steps := newFakeSteps()
			h2 := start(t, h.dir, steps)
			if tt.recovery != "" {
				c := steps.expect(t, tt.recovery)
				if tt.recovery != "check" && c.target != target11 && tt.recovery != "fetch" {
					t.Errorf("recovered step target %+v", c.target)
				}
				c.answer(tt.answer)
			} else {
				steps.none(t)
			}
			s := h2.waitState(tt.want)
			for i := 0; s.Result != tt.result && i < 500; i++ {
				time.Sleep(10 * time.Millisecond)
				s = h2.waitState(tt.want)
			}
			if s.Result != tt.result {
				t.Errorf("recovered to %+v, want result %d", s, tt.result)
			}
			d, _ := h2.conn.Device(ctx(t))
			wantSV := "1.0.0"
			if tt.result == 1 {
				wantSV = "1.1.0"
			}
			if d.SoftwareVersion != wantSV {
				t.Errorf("sv %q, want %q", d.SoftwareVersion, wantSV)
			}
		})
	}
}
