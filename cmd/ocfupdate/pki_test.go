package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/acl"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// readCert parses the one PEM certificate in path.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	blk, rest := pem.Decode(tufrepotest.ReadFile(t, path))
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: want exactly one PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkModes fails unless every file has its mode.
func checkModes(t *testing.T, modes map[string]os.FileMode) {
	t.Helper()
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
}

// verifyLeaf verifies c against the CA for usage.
func verifyLeaf(c *x509.Certificate, ca *x509.Certificate, usage x509.ExtKeyUsage) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func certPeer(cn string) ocf.Peer {
	return ocf.Peer{Secure: true, Auth: ocf.AuthCert, Identity: cn}
}

func pskPeer(id string) ocf.Peer { return ocf.Peer{Secure: true, Auth: ocf.AuthPSK, Identity: id} }

// TestPKI runs the quick start of docs/security.md: a CA, a device, an
// operator certificate with its ACL entry and a PSK, and checks the files
// against what ocfupdated (internal/creds, internal/acl) and ocfupdate
// (--cert, --psk-key-file) read.
func TestPKI(t *testing.T) {
	root := t.TempDir()
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	const id = "8F0C3A52-8d7e-4bb1-9d1a-0c3f1e2d4b5a"
	var outputs []string
	run := func(args ...string) string {
		t.Helper()
		out := mustRun(t, args...)
		outputs = append(outputs, out)
		return out
	}

	out := run("pki", "ca", in("ca"), "--name", "ACME fleet CA", "--days", "30")
	if !strings.Contains(out, `created CA "ACME fleet CA"`) || !strings.Contains(out, "ocfupdate pki device") {
		t.Errorf("pki ca output:\n%s", out)
	}
	dev := decodeJSON[pkiResult](t, run("-o", "json", "pki", "device", in("dev1"), "--ca", in("ca"), "--id", id,
		"--host", "192.0.2.10", "--host", "boiler-17.lan", "--host", "[2001:db8::1]"))
	op := decodeJSON[pkiResult](t, run("-o", "json", "pki", "operator", in("alice"), "--ca", in("ca"), "--name", "alice",
		"--acl", in("dev1", "acl.json")))
	psk := decodeJSON[pkiResult](t, run("-o", "json", "pki", "psk", in("ops"), "--identity", "bob",
		"--creds", in("dev1", "creds.json"), "--acl", in("dev1", "acl.json")))
	// A second device that only knows a PSK: its credential file is made
	// by pki psk alone.
	run("pki", "psk", in("ops"), "--identity", "carol", "--creds", in("dev2", "creds.json"))
	// A key libcoap's -k can take as text, added to the same file.
	run("pki", "psk", in("ops"), "--identity", "libcoap", "--printable", "--creds", in("dev2", "creds.json"))

	checkModes(t, map[string]os.FileMode{
		in("ca", "ca.pem"): 0o644, in("ca", "ca.key"): 0o600,
		in("dev1", "device.pem"): 0o644, in("dev1", "device.key"): 0o600, in("dev1", "ca.pem"): 0o644,
		in("dev1", "creds.json"): 0o600, in("dev1", "acl.json"): 0o644,
		in("alice", "operator.pem"): 0o644, in("alice", "operator.key"): 0o600, in("alice", "ca.pem"): 0o644,
		in("ops", "bob.psk"): 0o600, in("ops", "carol.psk"): 0o600, in("dev2", "creds.json"): 0o600,
		in("ca"): 0o700, in("dev1"): 0o700, in("ops"): 0o700,
	})

	caCert := readCert(t, in("ca", "ca.pem"))
	if !caCert.IsCA || !caCert.MaxPathLenZero || caCert.Subject.CommonName != "ACME fleet CA" ||
		caCert.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("CA certificate: CA %v, path len 0 %v, CN %q", caCert.IsCA, caCert.MaxPathLenZero, caCert.Subject.CommonName)
	}
	if d := time.Until(caCert.NotAfter); d < 29*day || d > 31*day {
		t.Errorf("CA valid until %v, want in 30 days", caCert.NotAfter)
	}
	if !bytes.Equal(tufrepotest.ReadFile(t, in("dev1", "ca.pem")), tufrepotest.ReadFile(t, in("ca", "ca.pem"))) {
		t.Error("dev1/ca.pem is not the CA certificate")
	}

	devCert := readCert(t, in("dev1", "device.pem"))
	if err := verifyLeaf(devCert, caCert, x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("device certificate as a server: %v", err)
	}
	if err := verifyLeaf(devCert, caCert, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("device certificate as a client: %v", err)
	}
	if cn := devCert.Subject.CommonName; cn != "uuid:8f0c3a52-8d7e-4bb1-9d1a-0c3f1e2d4b5a" || dev.Subject != cn {
		t.Errorf("device CN %q, printed %q", cn, dev.Subject)
	}
	for _, h := range []string{"192.0.2.10", "boiler-17.lan", "2001:db8::1"} {
		if err := devCert.VerifyHostname(h); err != nil {
			t.Errorf("device certificate: %v", err)
		}
	}
	if err := devCert.VerifyHostname("127.0.0.1"); err == nil {
		t.Error("device certificate with --host is also for 127.0.0.1")
	}
	// The certificate ends with the CA: it would not verify any longer.
	if !devCert.NotAfter.Equal(caCert.NotAfter) {
		t.Errorf("device certificate until %v, CA until %v", devCert.NotAfter, caCert.NotAfter)
	}

	opCert := readCert(t, in("alice", "operator.pem"))
	if err := verifyLeaf(opCert, caCert, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("operator certificate as a client: %v", err)
	}
	if err := verifyLeaf(opCert, caCert, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("operator certificate verifies as a server certificate")
	}
	if opCert.Subject.CommonName != "alice" || op.Subject != "alice" {
		t.Errorf("operator CN %q", opCert.Subject.CommonName)
	}

	// What the daemon loads.
	c, err := creds.Load(in("dev1", "creds.json"))
	if err != nil {
		t.Fatalf("creds.Load: %v", err)
	}
	if c.Certificate == nil || c.Certificate.Leaf.Subject.CommonName != devCert.Subject.CommonName || c.ClientCAs == nil ||
		!slices.Equal(c.PSKIdentities(), []string{"bob"}) {
		t.Errorf("loaded %s", c)
	}
	if _, err := opCert.Verify(x509.VerifyOptions{Roots: c.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the device does not trust the operator: %v", err)
	}
	deviceKey, err := c.LookupPSK([]byte("bob"))
	if err != nil {
		t.Fatal(err)
	}
	operatorKey, err := readPSK(in("ops", "bob.psk"))
	if err != nil {
		t.Fatalf("the operator's key file: %v", err)
	}
	if len(operatorKey) != pskBytes || !bytes.Equal(deviceKey, operatorKey) {
		t.Errorf("the operator's key (%d bytes) is not the device's", len(operatorKey))
	}
	c2, err := creds.Load(in("dev2", "creds.json"))
	if err != nil || !slices.Equal(c2.PSKIdentities(), []string{"carol", "libcoap"}) || c2.Certificate != nil {
		t.Fatalf("PSK-only credentials: %v, %v", c2, err)
	}
	text, err := readPSK(in("ops", "libcoap.psk"))
	if err != nil || len(text) != printableLen || strings.Trim(string(text), printableAlphabet) != "" {
		t.Errorf("--printable key: %d bytes, %v", len(text), err)
	}
	if k, _ := c2.LookupPSK([]byte("libcoap")); !bytes.Equal(k, text) {
		t.Error("the device's --printable key is not the operator's")
	}
	sec, err := (&securityFlags{cert: in("alice", "operator.pem"), key: in("alice", "operator.key"), ca: in("alice", "ca.pem")}).security()
	if err != nil || sec.Certificate == nil || sec.RootCAs == nil {
		t.Errorf("--cert/--key/--ca of the operator: %v", err)
	}

	// The operator's tools refuse a key others can read, as the device does.
	if err := os.Chmod(in("alice", "operator.key"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := (&securityFlags{cert: in("alice", "operator.pem"), key: in("alice", "operator.key")}).security(); err == nil ||
		!strings.Contains(err.Error(), "run: chmod 600 "+in("alice", "operator.key")) {
		t.Errorf("group-readable --key: %v", err)
	}

	l, err := acl.Load(in("dev1", "acl.json"))
	if err != nil {
		t.Fatalf("acl.Load: %v", err)
	}
	for _, tt := range []struct {
		peer ocf.Peer
		href string
		want acl.Permission
	}{
		{certPeer("alice"), "/oc/swu", acl.Full},
		{certPeer("alice"), "/oic/sec/pstat", acl.Full},
		{certPeer("alice"), "/oic/d", acl.Retrieve}, // discovery, as for everybody
		{pskPeer("bob"), "/oc/swu", acl.Full},
		{certPeer("mallory"), "/oc/swu", 0},
		{pskPeer("alice"), "/oc/swu", 0}, // a PSK identity is not a certificate CN
	} {
		if got := l.Permissions(tt.peer, tt.href); got != tt.want {
			t.Errorf("%s %s on %s: %d, want %d", tt.peer.Auth, tt.peer.Identity, tt.href, got, tt.want)
		}
	}
	if l.Authorize(certPeer("mallory"), "/oc/swu", codes.POST, false) != codes.Forbidden {
		t.Error("an operator without an entry may update")
	}

	// The JSON names the files with their modes; no output holds a key.
	wantFiles := map[string]string{in("ops", "bob.psk"): "0600", in("dev1", "creds.json"): "0600", in("dev1", "acl.json"): "0644"}
	for _, f := range psk.Files {
		if wantFiles[f.Path] != f.Mode {
			t.Errorf("pki psk printed %+v", f)
		}
		delete(wantFiles, f.Path)
	}
	if len(wantFiles) > 0 || psk.Identity != "bob" || len(psk.Next) == 0 {
		t.Errorf("pki psk printed %+v", psk)
	}
	secrets := [][]byte{[]byte(hex.EncodeToString(operatorKey)), text, []byte(hex.EncodeToString(text)), tufrepotest.ReadFile(t, in("ca", "ca.key")),
		tufrepotest.ReadFile(t, in("dev1", "device.key")), tufrepotest.ReadFile(t, in("alice", "operator.key"))}
	for _, o := range outputs {
		for _, s := range secrets {
			if bytes.Contains([]byte(o), bytes.TrimSpace(s)) || strings.Contains(o, "PRIVATE KEY") {
				t.Errorf("output holds a key:\n%s", o)
			}
		}
	}
}

// TestPKIDeviceDefaults: without --host the certificate is for loopback,
// --name sets the CN as given, and the CA directory may be the device's.
func TestPKIDeviceDefaults(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "pki", "ca", dir)
	mustRun(t, "pki", "device", dir, "--ca", dir, "--name", "boiler 17")
	c := readCert(t, filepath.Join(dir, "device.pem"))
	if c.Subject.CommonName != "boiler 17" || !slices.Equal(c.DNSNames, []string{"localhost"}) || len(c.IPAddresses) != 2 ||
		!c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("CN %q, DNS %v, IP %v", c.Subject.CommonName, c.DNSNames, c.IPAddresses)
	}
	if d := time.Until(c.NotAfter); d < (defaultLeafDays-1)*day || d > (defaultLeafDays+1)*day {
		t.Errorf("valid until %v, want in %d days", c.NotAfter, defaultLeafDays)
	}
	if _, err := creds.Load(filepath.Join(dir, "creds.json")); err != nil {
		t.Errorf("creds.Load: %v", err)
	}
	// Again: the device files exist, and nothing is overwritten.
	before := tufrepotest.ReadFile(t, filepath.Join(dir, "device.pem"))
	r := runCLI(t, "pki", "device", dir, "--ca", dir, "--name", "other")
	if r.code != exitFailure || !strings.Contains(r.stderr, "already exists") || !bytes.Equal(before, tufrepotest.ReadFile(t, filepath.Join(dir, "device.pem"))) {
		t.Errorf("second device in the same directory: exit %d, %q", r.code, r.stderr)
	}
}

// TestPKIErrors: usage errors exit 2, refusals 1, with one line on stderr,
// nothing on stdout, and nothing written.
func TestPKIErrors(t *testing.T) {
	ca := t.TempDir()
	mustRun(t, "pki", "ca", ca)
	leakyCA := t.TempDir()
	mustRun(t, "pki", "ca", leakyCA)
	if err := os.Chmod(filepath.Join(leakyCA, "ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	taken := t.TempDir()
	mustRun(t, "pki", "psk", taken, "--identity", "bob")
	leakyCreds := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(leakyCreds, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(leakyCreds, 0o644); err != nil {
		t.Fatal(err)
	}
	badCreds := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(badCreds, []byte(`{"psk": [{"identity": "x", "key_hex": "zz"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir() // must stay empty
	o := func(name string) string { return filepath.Join(out, name) }

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"ca days", []string{"pki", "ca", o("ca"), "--days", "0"}, exitUsage, "--days 0"},
		{"ca empty name", []string{"pki", "ca", o("ca"), "--name", ""}, exitUsage, "--name"},
		{"ca twice", []string{"pki", "ca", ca}, exitFailure, "already exists"},
		{"device no id", []string{"pki", "device", o("d"), "--ca", ca}, exitUsage, "exactly one of --id and --name"},
		{"device id and name", []string{"pki", "device", o("d"), "--ca", ca, "--id", "8f0c3a52-8d7e-4bb1-9d1a-0c3f1e2d4b5a", "--name", "x"}, exitUsage, "exactly one"},
		{"device bad id", []string{"pki", "device", o("d"), "--ca", ca, "--id", "boiler"}, exitUsage, "not a UUID"},
		{"device bad host", []string{"pki", "device", o("d"), "--ca", ca, "--name", "x", "--host", "a b"}, exitUsage, "--host"},
		{"device no ca", []string{"pki", "device", o("d"), "--name", "x"}, exitUsage, `"ca" not set`},
		{"device ca file", []string{"pki", "device", o("d"), "--ca", filepath.Join(ca, "ca.pem"), "--name", "x"}, exitUsage, "the CA's directory"},
		{"device missing ca", []string{"pki", "device", o("d"), "--ca", o("nope"), "--name", "x"}, exitFailure, "no such file"},
		{"device readable ca key", []string{"pki", "device", o("d"), "--ca", leakyCA, "--name", "x"}, exitFailure, "chmod 600"},
		{"operator no name", []string{"pki", "operator", o("op"), "--ca", ca}, exitUsage, `"name" not set`},
		{"operator bad resource", []string{"pki", "operator", o("op"), "--ca", ca, "--name", "a", "--resource", "swu"}, exitUsage, "want an href"},
		{"operator readable ca key", []string{"pki", "operator", o("op"), "--ca", leakyCA, "--name", "a"}, exitFailure, "chmod 600"},
		{"psk bad identity", []string{"pki", "psk", o("k"), "--identity", "../bob"}, exitUsage, "--identity"},
		{"psk no identity", []string{"pki", "psk", o("k")}, exitUsage, `"identity" not set`},
		{"psk identity twice", []string{"pki", "psk", o("k"), "--identity", "bob", "--creds", filepath.Join(taken, "creds.json")}, exitFailure, `already has PSK identity "bob"`},
		{"psk key file exists", []string{"pki", "psk", taken, "--identity", "bob", "--creds", o("creds.json")}, exitFailure, "already exists"},
		{"psk readable creds", []string{"pki", "psk", o("k"), "--identity", "bob", "--creds", leakyCreds}, exitFailure, "chmod 600"},
		{"psk broken creds", []string{"pki", "psk", o("k"), "--identity", "bob", "--creds", badCreds}, exitFailure, "fix the existing file first"},
		{"unknown pki command", []string{"pki", "cert"}, exitUsage, `unknown command "cert"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d mentioning %q", r.code, r.stdout, r.stderr, tt.code, tt.msg)
			}
		})
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("failed commands wrote %v", left)
	}
	if b := tufrepotest.ReadFile(t, leakyCreds); string(b) != "{}" {
		t.Errorf("a refused credential file was changed: %s", b)
	}
	if c, err := creds.Load(filepath.Join(taken, "creds.json")); err != nil || len(c.PSKIdentities()) != 1 {
		t.Errorf("the credential file of a refused identity: %v, %v", c, err)
	}
}
