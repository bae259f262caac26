package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// TestDemo runs "ocfupdate demo --non-interactive" as CI does: it must exit
// 0 with every device on the new version, having talked to them over
// CoAPs; with -o json stdout is the report.
func TestDemo(t *testing.T) {
	r := runCLI(t, "demo", "--non-interactive")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}
	for _, want := range []string{"reached over CoAPs (DTLS, PSK identity demo-operator)", "wave 1/3: 1 device(s)",
		"SUCCEEDED coaps://127.0.0.1:", "succeeded 5, failed 0", "all 5 devices run 1.1.0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "coap://") {
		t.Errorf("the demo shows plain CoAP endpoints:\n%s", r.stdout)
	}
	r = runCLI(t, "-o", "json", "demo", "--devices", "3", "--package-size", "1024")
	rep := decodeJSON[*client.Report](t, r.stdout)
	if r.code != exitOK || !rep.Complete() || rep.Counts.Succeeded != 3 || rep.Version != "1.1.0" || len(rep.Devices) != 3 {
		t.Fatalf("exit %d, report %+v", r.code, rep)
	}
	for _, d := range rep.Devices {
		if !strings.HasPrefix(d.Endpoint, "coaps://127.0.0.1:") || d.Outcome != client.OutcomeSucceeded {
			t.Errorf("device %s: %s, want a success over coaps", d.Endpoint, d.Outcome)
		}
	}
	// --insecure: the old plain CoAP demo, with a warning.
	r = runCLI(t, "-o", "json", "demo", "--devices", "1", "--package-size", "1024", "--insecure")
	rep = decodeJSON[*client.Report](t, r.stdout)
	if r.code != exitOK || rep.Counts.Succeeded != 1 || !strings.HasPrefix(rep.Devices[0].Endpoint, "coap://") ||
		!strings.Contains(r.stderr, "WARNING: --insecure") {
		t.Errorf("--insecure: exit %d, stderr %q, report %+v", r.code, r.stderr, rep)
	}
	if r := runCLI(t, "demo", "--devices", "0"); r.code != exitUsage {
		t.Errorf("--devices 0: exit %d", r.code)
	}
}

// TestDemoFleetSecurity: the demo's devices are secured as ocfupdated
// --creds secures a device. Plain CoAP reaches discovery and /oic/d only
// (4.01 for the update resource and pstat), a wrong key or identity fails
// the handshake, and the demo's operator key gets everything.
func TestDemoFleetSecurity(t *testing.T) {
	dir := t.TempDir()
	c, sec, err := demoCredentials(filepath.Join(dir, "credentials", "creds.json"), filepath.Join(dir, "operator", "demo-operator.psk"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := startFleet(t.Context(), fleetConfig{Dir: dir, Devices: 1, Model: "lamp",
		Versions: []string{"1.0.0", "1.1.0"}, PackageSize: 1024, Creds: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("stop fleet: %v", err)
		}
	})
	if !strings.HasPrefix(f.endpoints[0], "coaps://") || !strings.HasPrefix(f.plain[0], "coap://") {
		t.Fatalf("endpoints %v, plain %v", f.endpoints, f.plain)
	}

	plain, err := client.Dial(t.Context(), f.plain[0])
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if info, err := plain.Device(t.Context()); err != nil || info.SoftwareVersion != "1.0.0" {
		t.Errorf("/oic/d over plain CoAP: %+v, %v", info, err)
	}
	for _, tt := range []struct {
		name string
		do   func() error
	}{
		{"GET /oc/swu", func() error { _, err := plain.Get(t.Context(), "/oc/swu"); return err }},
		{"POST /oc/swu", func() error {
			_, err := plain.Post(t.Context(), "/oc/swu", map[string]any{"purl": f.purl, "swupdateaction": "upgrade", "updatetime": "now"})
			return err
		}},
		{"POST /oic/sec/pstat", func() error {
			_, err := plain.Post(t.Context(), "/oic/sec/pstat", map[string]any{"tm": 128})
			return err
		}},
	} {
		var de *client.DeviceError
		if err := tt.do(); !errors.As(err, &de) || de.Code != codes.Unauthorized {
			t.Errorf("%s over plain CoAP: %v, want 4.01", tt.name, err)
		}
	}

	wrongKey := bytes.Repeat([]byte{7}, 16)
	for _, bad := range []*client.Security{
		{PSKIdentity: demoIdentity, PSK: wrongKey},
		{PSKIdentity: "intruder", PSK: sec.PSK},
	} {
		// A wrong key shows as a handshake that never completes: DTLS
		// drops records it cannot decrypt rather than answering them.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		conn, err := client.DialSecure(ctx, f.endpoints[0], bad)
		cancel()
		if err == nil {
			conn.Close()
			t.Errorf("identity %q with the wrong key: handshake succeeded", bad.PSKIdentity)
		}
	}
	d, err := client.OpenSecure(t.Context(), f.endpoints[0], sec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	purl := f.purl
	if s, err := d.Update(t.Context(), client.Update{PURL: &purl}); err != nil || s.PURL != purl {
		t.Errorf("update over coaps: %+v, %v", s, err)
	}
}

// TestDemoStepTrail: a device's row in the rollout view follows its states
// through check, download (with the bar), verify and install, and keeps a
// step that went by between two notifications ticked.
func TestDemoStepTrail(t *testing.T) {
	prog := func(done int64) *swu.Progress { return &swu.Progress{Done: done, Total: 200} }
	const ep = "coaps://127.0.0.1:5684"
	tests := []struct {
		name   string
		seen   []client.Status
		want   string
		absent string
	}{
		{"before any status", nil,
			"demo-001     · check  · download [----------------]   0%  · verify  · install  127.0.0.1:5684 connecting", ""},
		{"the device's result from before the rollout", []client.Status{{State: client.StateIdle, Action: client.ActionIdle, Result: client.ResultSuccess}},
			"· check  · download", "✓"},
		{"checking", []client.Status{{State: client.StateIdle, Action: "upgrade"}},
			"demo-001     ▶ check  · download [----------------]   0%  · verify  · install  127.0.0.1:5684", ""},
		{"found", []client.Status{{State: client.StateIdle, Action: "upgrade"}, {State: client.StateNSA, Action: "upgrade"}},
			"✓ check  ▶ download [----------------]   0%  · verify", ""},
		{"half downloaded", []client.Status{{State: client.StateSVV, Action: "upgrade", Progress: prog(100)}},
			"✓ check  ▶ download [########--------]  50%  · verify  · install", ""},
		{"progress cleared at the end of the download", []client.Status{
			{State: client.StateSVV, Action: "upgrade", Progress: prog(200)}, {State: client.StateSVV, Action: "upgrade"}},
			"✓ check  ✓ download [################] 100%  ▶ verify  · install", ""},
		{"installing, the download never seen", []client.Status{{State: client.StateUpgrading, Action: "upgrade"}},
			"✓ check  ✓ download [################] 100%  ✓ verify  ▶ install", ""},
		{"verified", []client.Status{{State: client.StateSVA, Action: "upgrade"}},
			"✓ verify  ▶ install", ""},
		{"done", []client.Status{{State: client.StateUpgrading, Action: "upgrade"},
			{State: client.StateIdle, Action: client.ActionIdle, Result: client.ResultSuccess}},
			"✓ check  ✓ download [################] 100%  ✓ verify  ✓ install", "▶"},
		{"failed downloading", []client.Status{{State: client.StateSVV, Action: "upgrade", Progress: prog(20)},
			{State: client.StateIdle, Action: client.ActionIdle, Result: 6}},
			"✓ check  ✗ download [#---------------]  10%  · verify", "▶"},
	}
	for _, tt := range tests {
		tr := newStepTrail("k")
		for _, s := range tt.seen {
			tr.observe(s)
		}
		row := tr.row("demo-001", ep)
		if !strings.Contains(row, tt.want) || (tt.absent != "" && strings.Contains(row, tt.absent)) {
			t.Errorf("%s: row\n%q\nwant it to contain\n%q", tt.name, row, tt.want)
		}
	}
}

// screen replays what a liveView wrote to a terminal: lines, with the
// view's "up one line and clear it" taking the last one back.
func screen(out string) []string {
	var lines []string
	for i, part := range strings.Split(out, "\x1b[1A\x1b[2K") {
		if i > 0 {
			lines = lines[:len(lines)-1]
		}
		lines = append(lines, strings.SplitAfter(part, "\n")...)
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
	}
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	return lines
}

// TestDemoLiveView: on a terminal the view keeps permanent lines above the
// rows, rows in key order, the footer last, and every line within the
// terminal's width, so that redrawing clears exactly what it drew.
func TestDemoLiveView(t *testing.T) {
	var out bytes.Buffer
	v := newLiveView(&out, true)
	v.mu.Lock() // the view's ticker reads it
	v.width = func() int { return 30 }
	v.mu.Unlock()
	v.setRow("b", "row b "+strings.Repeat("=", 40))
	v.setFooter("tally 1")
	v.setRow("a", "row a")
	v.println("permanent line")
	v.setRow("c", "row c")
	v.removeRow("c")
	v.setFooter("tally 2")
	v.close()
	got := screen(out.String())
	want := []string{"permanent line", "row a", "row b " + strings.Repeat("=", 22) + "…", "tally 2"}
	if !slices.Equal(got, want) {
		t.Fatalf("screen\n%q\nwant\n%q", got, want)
	}
	for _, l := range got {
		if utf8.RuneCountInString(l) > 29 {
			t.Errorf("line %q is wider than the terminal allows", l)
		}
	}

	out.Reset()
	plain := newLiveView(&out, false)
	plain.setRow("a", "row a")
	plain.setFooter("tally")
	plain.println("permanent line")
	plain.close()
	if out.String() != "permanent line\n" {
		t.Errorf("not a terminal: wrote %q, want the permanent line only", out.String())
	}
}
