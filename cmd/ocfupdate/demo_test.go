package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
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
