package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
)

// newTestFleet starts n devices on 1.0.0 and a repository offering 1.1.0,
// for the device commands' tests.
func newTestFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f, err := startFleet(t.Context(), fleetConfig{Dir: t.TempDir(), Devices: n, Model: "lamp",
		Versions: []string{"1.0.0", "1.1.0"}, PackageSize: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.stop(); err != nil {
			t.Errorf("stop fleet: %v", err)
		}
	})
	return f
}

func writeEndpoints(t *testing.T, eps ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.txt")
	if err := os.WriteFile(p, []byte("# test fleet\n\n"+strings.Join(eps, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

// TestDeviceCommands runs discover, status, watch and update against real
// in-process devices and checks their JSON and exit codes against
// docs/cli.md.
func TestDeviceCommands(t *testing.T) {
	f := newTestFleet(t, 2)
	ep1, ep2, dead := f.endpoints[0], f.endpoints[1], daemontest.DeadEndpoint(t)

	devs := decodeJSON[[]deviceJSON](t, mustRun(t, "-o", "json", "discover", ep1, ep2))
	if len(devs) != 2 || devs[0].Endpoint != ep1 || devs[0].Version != "1.0.0" || devs[0].Model != "lamp" ||
		devs[0].ID == "" || devs[0].State != "idle" || devs[0].Result == nil || devs[1].Endpoint != ep2 {
		t.Fatalf("discover: %+v", devs)
	}
	table := mustRun(t, "discover", ep1)
	if !strings.Contains(table, "ID") || !strings.Contains(table, "demo-001") || !strings.Contains(table, ep1) {
		t.Errorf("discover table:\n%s", table)
	}

	r := runCLI(t, "-o", "json", "status", ep1, dead, "--request-timeout", "1s")
	devs = decodeJSON[[]deviceJSON](t, r.stdout)
	if r.code != exitFailure || len(devs) != 2 || devs[1].Error == "" || devs[0].Error != "" ||
		!strings.Contains(r.stderr, "1 of 2 device(s) could not be read") {
		t.Errorf("status with a dead device: exit %d, %+v, stderr %q", r.code, devs, r.stderr)
	}

	// A check through pstat, then the upgrade through the resource.
	st := decodeJSON[deviceJSON](t, mustRun(t, "-o", "json", "update", ep1, "--purl", f.purl, "--action", "isac", "--via", "pstat", "--wait"))
	if st.State != "nsa" || st.NV != "1.1.0" || *st.Result != 0 || st.Version != "1.0.0" {
		t.Errorf("isac via pstat: %+v", st)
	}
	st = decodeJSON[deviceJSON](t, mustRun(t, "-o", "json", "update", ep1, "--purl", f.purl, "--wait"))
	if st.State != "idle" || *st.Result != 1 || st.Version != "1.1.0" || st.Detail != "updated to version 1.1.0" {
		t.Errorf("upgrade: %+v", st)
	}
	out := mustRun(t, "update", ep2, "--purl", f.purl, "--wait", "--non-interactive")
	if !strings.Contains(out, ep2+": succeeded: result 1 (success), version 1.1.0") || !strings.Contains(out, ep2+" state=idle action=idle result=1 detail=\"updated to version 1.1.0\"") {
		t.Errorf("update --wait lines:\n%s", out)
	}

	lines := mustRun(t, "-o", "json", "watch", ep1, ep2, "--until-done")
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		j := parseJSON[deviceJSON](t, l)
		if j.Version != "" || j.State != "idle" || *j.Result != 1 {
			t.Errorf("watch line %s", l)
		}
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"failure result", []string{"update", ep2, "--purl", f.purl + "/missing", "--wait"}, exitFailure, "result 404"},
		{"refused", []string{"update", ep2, "--purl", "https://u:p@h/"}, exitFailure, "property purl"},
		{"unreachable", []string{"update", dead, "--purl", f.purl, "--request-timeout", "1s"}, exitFailure, ""},
		{"no purl", []string{"update", ep1}, exitUsage, `"purl" not set`},
		{"bad action", []string{"update", ep1, "--purl", f.purl, "--action", "reboot"}, exitUsage, "--action"},
		{"pstat at", []string{"update", ep1, "--purl", f.purl, "--via", "pstat", "--at", "2030-01-01T00:00:00Z"}, exitUsage, "pstat"},
		{"bad time", []string{"update", ep1, "--purl", f.purl, "--at", "tomorrow"}, exitUsage, "RFC 3339"},
		{"bad endpoint", []string{"status", "http://x"}, exitUsage, "scheme"},
		{"coaps without credentials", []string{"status", "coaps://127.0.0.1:1"}, exitUsage, "coaps needs credentials"},
		{"half a psk", []string{"update", ep1, "--purl", f.purl, "--psk-identity", "op"}, exitUsage, "go together"},
		{"no devices", []string{"status"}, exitUsage, "no devices"},
		{"watch no devices", []string{"watch"}, exitUsage, "no devices"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", r.code, r.stderr, tt.code, tt.msg)
			}
		})
	}
}

// TestRolloutCommand: the report file and exit codes of complete, halted,
// interrupted and dry runs, and usage errors.
func TestRolloutCommand(t *testing.T) {
	f := newTestFleet(t, 4)
	list := writeEndpoints(t, f.endpoints...)
	dir := t.TempDir()
	report := func(name string) *client.Report {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return decodeJSON[*client.Report](t, string(b))
	}

	t.Run("dry run", func(t *testing.T) {
		rep := decodeJSON[*client.Report](t, mustRun(t, "-o", "json", "rollout", "--purl", f.purl, "--endpoints", list, "--dry-run", "--waves", "1,100%"))
		if !rep.DryRun || len(rep.Devices) != 4 || rep.Counts.NotStarted != 4 || rep.Devices[3].Wave != 2 {
			t.Errorf("plan %+v", rep)
		}
	})
	t.Run("halted", func(t *testing.T) {
		r := runCLI(t, "rollout", "--purl", f.purl+"/missing", "--endpoints", list, "--report", filepath.Join(dir, "halt.json"), "--non-interactive")
		rep := report("halt.json")
		if r.code != exitHalted || !rep.Halted || rep.Counts.Failed != 1 || rep.Counts.NotStarted != 3 ||
			rep.Devices[0].Outcome != client.OutcomeFailed || *rep.Devices[0].Result != 404 {
			t.Errorf("exit %d, stderr %q, report %+v", r.code, r.stderr, rep)
		}
		if !strings.Contains(r.stdout, "HALTED:") || !strings.Contains(r.stderr, "rollout halted: 1 device(s) failed") {
			t.Errorf("stdout:\n%s\nstderr: %s", r.stdout, r.stderr)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var out, errb strings.Builder
		code := run(ctx, []string{"rollout", "--purl", f.purl, "--endpoints", list, "--report", filepath.Join(dir, "int.json")}, &out, &errb)
		rep := report("int.json")
		if code != exitInterrupted || !rep.Cancelled || rep.Counts.NotStarted != 4 {
			t.Errorf("exit %d, stderr %q, report %+v", code, errb.String(), rep)
		}
	})
	t.Run("complete", func(t *testing.T) {
		out := mustRun(t, "rollout", "--purl", f.purl, "--endpoints", list, "--report", filepath.Join(dir, "ok.json"),
			"--version", "1.1.0", "--concurrency", "2", "--waves", "1,50%")
		rep := report("ok.json")
		if !rep.Complete() || rep.Counts.Succeeded != 4 || len(rep.Waves) != 2 {
			t.Errorf("report %+v", rep)
		}
		for _, d := range rep.Devices {
			if d.Started == nil || d.Finished == nil || d.FromVersion != "1.0.0" || d.Version != "1.1.0" || *d.Result != 1 {
				t.Errorf("device %+v", d)
			}
		}
		if !strings.Contains(out, "succeeded 4, failed 0") {
			t.Errorf("summary:\n%s", out)
		}
		// Again: every device is on 1.1.0 and is skipped untouched.
		mustRun(t, "rollout", "--purl", f.purl, "--endpoints", list, "--report", filepath.Join(dir, "again.json"), "--version", "1.1.0")
		if rep := report("again.json"); rep.Counts.Skipped != 4 || !rep.Complete() {
			t.Errorf("second rollout %+v", rep.Counts)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no report", []string{"--endpoints", list}, "--report"},
		{"no fleet", []string{"--report", "r.json"}, "exactly one of --discover and --endpoints"},
		{"both", []string{"--endpoints", list, "--discover", "--report", "r.json"}, "exactly one"},
		{"bad waves", []string{"--endpoints", list, "--report", "r.json", "--waves", "1,0"}, "waves"},
		{"bad threshold", []string{"--endpoints", list, "--report", "r.json", "--max-failures", "x"}, "max failures"},
		{"pstat at", []string{"--endpoints", list, "--report", "r.json", "--via", "pstat", "--at", "2030-01-01T00:00:00Z"}, "pstat"},
		{"zero concurrency", []string{"--endpoints", list, "--report", "r.json", "--concurrency", "0"}, "concurrency"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"rollout", "--purl", f.purl}, tt.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want usage error about %s", r.code, r.stderr, tt.msg)
			}
		})
	}
}

// TestSecureFlags: the device commands talk CoAPs with a PSK read from a
// file only its owner may read, provisioned with "pki psk"; without
// credentials a secure device refuses them the update resource (4.01).
func TestSecureFlags(t *testing.T) {
	dir := t.TempDir()
	credsPath, keyFile := filepath.Join(dir, "dev", "creds.json"), filepath.Join(dir, "ops", "operator.psk")
	mustRun(t, "pki", "psk", filepath.Join(dir, "ops"), "--identity", "operator", "--creds", credsPath)
	c, err := creds.Load(credsPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := startFleet(t.Context(), fleetConfig{Dir: t.TempDir(), Devices: 1, Model: "lamp",
		Versions: []string{"1.0.0", "1.1.0"}, PackageSize: 1024, Creds: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.stop() })
	// A coap:// endpoint (what multicast finds) leads to the coaps one.
	st := decodeJSON[deviceJSON](t, mustRun(t, "-o", "json", "update", f.plain[0], "--purl", f.purl, "--wait",
		"--psk-identity", "operator", "--psk-key-file", keyFile))
	if st.Version != "1.1.0" || st.Endpoint != f.endpoints[0] || !strings.HasPrefix(st.Endpoint, "coaps://127.0.0.1:") {
		t.Errorf("update over coaps: %+v", st)
	}
	devs := decodeJSON[[]deviceJSON](t, mustRun(t, "-o", "json", "status", st.Endpoint, "--psk-identity", "operator", "--psk-key-file", keyFile))
	if len(devs) != 1 || devs[0].Version != "1.1.0" || devs[0].State != "idle" {
		t.Errorf("status over coaps: %+v", devs)
	}
	for _, tt := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no credentials", []string{"update", f.plain[0], "--purl", f.purl}, "Unauthorized: authentication required"},
		{"status without credentials", []string{"status", f.plain[0]}, "could not be read"},
		{"unknown identity", []string{"status", st.Endpoint, "--psk-identity", "intruder", "--psk-key-file", keyFile, "--request-timeout", "2s"}, "could not be read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", r.code, r.stderr, exitFailure, tt.msg)
			}
		})
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "status", st.Endpoint, "--psk-identity", "operator", "--psk-key-file", keyFile)
	if r.code != exitFailure || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("world-readable key: exit %d, %q", r.code, r.stderr)
	}
}
