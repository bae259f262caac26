package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/ocfupdate/ocfupdate/client"
)

// libcoap runs coap-client-notls and returns its stdout and stderr.
func libcoap(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctxT(t), coapClient(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("coap-client %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// cborItems decodes the CBOR items coap-client printed back to back.
func cborItems(t *testing.T, out string) []any {
	t.Helper()
	dec := cbor.NewDecoder(strings.NewReader(strings.TrimSuffix(out, "\n")))
	var items []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			t.Fatalf("decode coap-client output %q: %v", out, err)
		}
		items = append(items, v)
	}
}

// TestLibcoapInterop drives the real daemon with libcoap's client:
// discovery with -A 60, a CBOR POST, an error with its diagnostic, and
// Observe notifications.
func TestLibcoapInterop(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	ep := d.Endpoint

	out, _ := libcoap(t, "-m", "get", "-A", "60", ep+"/oic/res?rt=oic.r.softwareupdate")
	items := cborItems(t, out)
	links, ok := items[0].([]any)
	if len(items) != 1 || !ok || len(links) != 1 {
		t.Fatalf("/oic/res?rt=: %v", items)
	}
	link := links[0].(map[any]any)
	href, _ := link["href"].(string)
	if href != "/oc/swu" || link["eps"] == nil || !strings.HasPrefix(link["anchor"].(string), "ocf://") {
		t.Fatalf("link %v", link)
	}

	body, _ := cbor.Marshal(map[string]any{"purl": "https://repo.example/fleet"})
	f := filepath.Join(t.TempDir(), "body.cbor")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	libcoap(t, "-m", "post", "-t", "60", "-f", f, ep+href)
	out, _ = libcoap(t, "-m", "get", "-A", "60", ep+href)
	rep := cborItems(t, out)[0].(map[any]any)
	if rep["purl"] != "https://repo.example/fleet" || rep["swupdatestate"] != "idle" {
		t.Fatalf("after POST: %v", rep)
	}

	bad, _ := cbor.Marshal(map[string]any{"purl": 42})
	if err := os.WriteFile(f, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr := libcoap(t, "-m", "post", "-t", "60", "-f", f, ep+href)
	if !strings.HasPrefix(stderr, "4.00") || !strings.Contains(stderr, "purl") {
		t.Fatalf("bad POST: stderr %q", stderr)
	}

	// Observe for 3 s while our Go client changes the purl twice.
	obs := exec.CommandContext(ctxT(t), coapClient(t), "-s", "3", "-m", "get", "-A", "60", ep+href)
	var obsOut bytes.Buffer
	obs.Stdout = &obsOut
	if err := obs.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	c, err := client.Dial(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []string{"https://repo.example/a", "https://repo.example/b"} {
		if _, err := c.Post(ctxT(t), href, map[string]any{"purl": p}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := obs.Wait(); err != nil {
		t.Fatalf("observer: %v", err)
	}
	var purls []string
	for _, it := range cborItems(t, obsOut.String()) {
		purls = append(purls, it.(map[any]any)["purl"].(string))
	}
	want := []string{"https://repo.example/fleet", "https://repo.example/a", "https://repo.example/b"}
	if strings.Join(purls, " ") != strings.Join(want, " ") {
		t.Fatalf("observed purls %v, want %v", purls, want)
	}
}

// TestGoClient drives the real daemon with our own client library: find
// the resource, ask for an upgrade, and see it fail with result 8 and a
// detail that says why (no trusted root configured).
func TestGoClient(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "--model", "m-7", "--version", "2.0.0")
	c, err := client.Dial(ctxT(t), d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev, err := c.Device(ctxT(t))
	if err != nil || dev.Model != "m-7" || dev.SoftwareVersion != "2.0.0" || dev.ID == "" {
		t.Fatalf("device %+v, %v", dev, err)
	}
	href, err := c.FindResource(ctxT(t), "oic.r.softwareupdate")
	if err != nil {
		t.Fatal(err)
	}
	purl := "https://repo.example/r"
	if _, err := c.Update(ctxT(t), href, client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Status(ctxT(t), href)
		if err != nil {
			t.Fatal(err)
		}
		if s.Result == 8 {
			if s.State != "idle" || !strings.Contains(s.Detail, "--trust") {
				t.Fatalf("status %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSignalsAndIdentity: SIGTERM and SIGINT stop the daemon with status 0;
// the identity survives restarts.
func TestSignalsAndIdentity(t *testing.T) {
	dir := t.TempDir()
	var ids []string
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		d := startDaemon(t, dir)
		c, err := client.Dial(ctxT(t), d.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := c.Device(ctxT(t))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, dev.ID+"/"+dev.PIID)
		if err := d.Signal(t, sig); err != nil {
			t.Fatalf("exit after %v: %v\n%s", sig, err, d.Stderr())
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("identity changed across restarts: %v", ids)
	}
}

// TestBadFlags: bad configuration is a clear error and a non-zero exit.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--manufacturing-date", "yesterday"},
		{"--log-level", "loud"},
		{"--coap", "not-an-address"},
		{"stray"},
		{"--insecure-open-acl", "--acl", "acl.json"},
		{"--dtls-max-sessions", "-1"},
		{"--creds", "/nonexistent/creds.json"},
		{"--acl", "/nonexistent/acl.json"},
	} {
		cmd := exec.Command(daemonBin, append([]string{"--data-dir", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), "ocfupdated:") {
			t.Errorf("%v: err %v, output %q", args, err, out)
		}
	}
}

// TestDeviceIDFlag: --device-id sets di at the first start, so it can match
// the UUID in the device certificate that pki issued.
func TestDeviceIDFlag(t *testing.T) {
	const id = "0f5a6f3e-1d2c-4b5a-8e9f-0000000000aa"
	d := startDaemon(t, t.TempDir(), "--device-id", id)
	c, err := client.Dial(ctxT(t), d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if dev, err := c.Device(ctxT(t)); err != nil || dev.ID != id {
		t.Fatalf("di %q, %v; want %s", dev.ID, err, id)
	}
}
