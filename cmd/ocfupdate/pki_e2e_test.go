package main

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ocfupdate/ocfupdate/internal/daemontest"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// buildDaemon builds ocfupdated into a temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds ocfupdated; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "ocfupdated")
	if err := daemontest.Build("github.com/ocfupdate/ocfupdate/cmd/ocfupdated", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestPKIWithDaemon provisions a real ocfupdated with the output of pki
// (--creds, --acl) and drives it over CoAPs with the operator's
// certificate and with a PSK, as docs/security.md tells an operator to. A
// certificate from the same CA without an ACL entry is refused with the
// device's 4.03 diagnostic, plain CoAP with 4.01, and no key reaches the
// daemon's log.
func TestPKIWithDaemon(t *testing.T) {
	bin := buildDaemon(t)
	root := t.TempDir()
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	devACL := in("dev", "acl.json")
	mustRun(t, "pki", "ca", in("ca"))
	mustRun(t, "pki", "device", in("dev"), "--ca", in("ca"), "--id", "0f5a6f3e-1d2c-4b5a-8e9f-0000000000d1")
	mustRun(t, "pki", "operator", in("alice"), "--ca", in("ca"), "--name", "alice", "--acl", devACL)
	mustRun(t, "pki", "psk", in("ops"), "--identity", "bob", "--creds", in("dev", "creds.json"), "--acl", devACL)
	mustRun(t, "pki", "operator", in("mallory"), "--ca", in("ca"), "--name", "mallory") // entry in mallory/acl.json only
	alice := []string{"--cert", in("alice", "operator.pem"), "--key", in("alice", "operator.key"), "--ca", in("alice", "ca.pem")}
	bob := []string{"--psk-identity", "bob", "--psk-key-file", in("ops", "bob.psk")}
	mallory := []string{"--cert", in("mallory", "operator.pem"), "--key", in("mallory", "operator.key"), "--ca", in("mallory", "ca.pem")}

	// A repository with 1.0.0 and 1.1.0, served over HTTPS.
	rootJSON, err := buildRepo(in("repo"), in("packages"), fleetConfig{Model: "thermo", Versions: []string{"1.0.0", "1.1.0"}, PackageSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(tufrepo.NewHandler(in("repo")))
	defer srv.Close()
	repoCA := in("repo-ca.pem")
	if err := os.WriteFile(repoCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in("root.json"), rootJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	purl := srv.URL

	d := daemontest.Start(t, bin, daemontest.Options{DataDir: in("data"), Mode: daemontest.Secure, Args: []string{
		"--creds", in("dev", "creds.json"), "--acl", devACL, "--multicast=false",
		"--trust", in("root.json"), "--ca", repoCA, "--model", "thermo", "--version", "1.0.0", "--restart=false"}})
	ep := d.Secure
	withCreds := func(creds []string, args ...string) []string { return append(args, creds...) }

	devs := decodeJSON[[]deviceJSON](t, mustRun(t, withCreds(alice, "-o", "json", "status", ep)...))
	if len(devs) != 1 || devs[0].Version != "1.0.0" || devs[0].State != "idle" || devs[0].Endpoint != ep {
		t.Fatalf("status with the operator certificate: %+v", devs)
	}
	st := decodeJSON[deviceJSON](t, mustRun(t, withCreds(bob, "-o", "json", "update", ep, "--purl", purl, "--action", "isac", "--wait")...))
	if st.State != "nsa" || st.NV != "1.1.0" || st.Result == nil || *st.Result != 0 {
		t.Errorf("check with the PSK: %+v", st)
	}
	st = decodeJSON[deviceJSON](t, mustRun(t, withCreds(alice, "-o", "json", "update", ep, "--purl", purl, "--wait")...))
	if st.Version != "1.1.0" || st.Result == nil || *st.Result != 1 || st.Endpoint != ep {
		t.Errorf("upgrade with the operator certificate: %+v", st)
	}
	devs = decodeJSON[[]deviceJSON](t, mustRun(t, withCreds(bob, "-o", "json", "status", ep)...))
	if len(devs) != 1 || devs[0].Version != "1.1.0" {
		t.Errorf("status with the PSK: %+v", devs)
	}

	for _, tt := range []struct {
		name string
		args []string
		msg  string
	}{
		{"certificate without an ACL entry", withCreds(mallory, "update", ep, "--purl", purl),
			"device answered Forbidden: not permitted by the device's access control list"},
		{"status without an ACL entry", withCreds(mallory, "status", ep), "1 of 1 device(s) could not be read"},
		{"plain CoAP", []string{"update", d.Endpoint, "--purl", purl}, "device answered Unauthorized: authentication required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", r.code, r.stderr, exitFailure, tt.msg)
			}
		})
	}

	if err := d.Signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("ocfupdated after SIGTERM: %v", err)
	}
	log := d.Stderr()
	key := bytes.TrimSpace(tufrepotest.ReadFile(t, in("ops", "bob.psk")))
	if _, err := hex.DecodeString(string(key)); err != nil || len(key) == 0 {
		t.Fatalf("bob.psk: %v", err)
	}
	if strings.Contains(log, string(key)) || strings.Contains(log, "PRIVATE KEY") {
		t.Error("the daemon's log holds a key")
	}
	if !strings.Contains(log, "bob") {
		t.Errorf("the daemon's log does not name the PSK identities it loaded:\n%s", log)
	}
}
