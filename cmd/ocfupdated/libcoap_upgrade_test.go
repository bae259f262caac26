package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// TestUpgradeWithLibcoapOnly is the demo path with no Go client at all:
// the real `ocfupdate repo` builds, signs and serves the repository, the
// real ocfupdated trusts it, and libcoap's coap-client-notls starts the
// upgrade with one CBOR POST and watches /oic/d until sv is 1.1.0.
func TestUpgradeWithLibcoapOnly(t *testing.T) {
	coapClient(t)
	tmp := t.TempDir()
	cli := filepath.Join(tmp, "ocfupdate")
	if out, err := exec.Command("go", "build", "-o", cli, "../ocfupdate").CombinedOutput(); err != nil {
		t.Fatalf("build ocfupdate: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ocfupdate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	repo := filepath.Join(tmp, "repo")
	pkg := filepath.Join(tmp, "thermo-1.1.0.tar.gz")
	writePackage(t, pkg, "thermo", "1.1.0")
	run("repo", "init", repo)
	run("repo", "add", repo, pkg, "--model", "thermo", "--version", "1.1.0")
	run("repo", "publish", repo)
	root := filepath.Join(tmp, "root.json")
	run("repo", "root", repo, "--out", root)

	serve := exec.Command(cli, "repo", "serve", repo, "--https", "127.0.0.1:0")
	stdout, _ := serve.StdoutPipe()
	stderr := &syncBuffer{}
	serve.Stderr = stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	purl, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if err != nil || !ok {
		t.Fatalf("repo serve said %q (%v): %s", line, err, stderr.String())
	}
	// The certificate line goes to stderr before the serving line goes to
	// stdout, but the two pipes are read independently: wait for it.
	var cert string
	for deadline := time.Now().Add(5 * time.Second); cert == "" && time.Now().Before(deadline); {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if c, ok := strings.CutPrefix(l, "tls certificate: "); ok {
				cert = strings.TrimSpace(c)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if cert == "" {
		t.Fatalf("no certificate path on stderr: %q", stderr.String())
	}

	d := startDaemon(t, filepath.Join(tmp, "device"), "--trust", root, "--ca", cert,
		"--model", "thermo", "--version", "1.0.0")
	body, _ := cbor.Marshal(map[string]any{"purl": purl, "swupdateaction": "upgrade", "updatetime": "now"})
	f := filepath.Join(tmp, "upgrade.cbor")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	libcoap(t, "-m", "post", "-t", "60", "-f", f, d.Endpoint+"/oc/swu")

	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := libcoap(t, "-m", "get", "-A", "60", d.Endpoint+"/oic/d")
		dev := cborItems(t, out)[0].(map[any]any)
		if dev["sv"] == "1.1.0" {
			break
		}
		if time.Now().After(deadline) {
			out, _ := libcoap(t, "-m", "get", d.Endpoint+"/oc/swu")
			t.Fatalf("sv still %v; resource %v", dev["sv"], cborItems(t, out))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := libcoap(t, "-m", "get", d.Endpoint+"/oc/swu")
	rep := cborItems(t, out)[0].(map[any]any)
	if rep["swupdateresult"] != uint64(1) || rep["swupdatestate"] != "idle" {
		t.Fatalf("after the upgrade: %v", rep)
	}
}
