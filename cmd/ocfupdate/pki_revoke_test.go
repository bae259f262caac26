package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// readCRLFile parses the one PEM CRL in path and checks it against ca.
func readCRLFile(t *testing.T, path string, ca *x509.Certificate) *x509.RevocationList {
	t.Helper()
	blk, rest := pem.Decode(tufrepotest.ReadFile(t, path))
	if blk == nil || blk.Type != "X509 CRL" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: want exactly one PEM CRL", path)
	}
	rl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("%s: not signed by the CA: %v", path, err)
	}
	return rl
}

// serials lists the serials of rl as creds.SerialText prints them.
func serials(rl *x509.RevocationList) []string {
	var out []string
	for _, e := range rl.RevokedCertificateEntries {
		out = append(out, creds.SerialText(e.SerialNumber))
	}
	return out
}

// TestPKIRevoke: revoke writes a signed CRL with the serial, a higher
// number each time, and a next update in --days; revoking again changes
// nothing; --list shows the serials without writing; --renew signs the
// same list again; the result loads as ocfupdated loads it.
func TestPKIRevoke(t *testing.T) {
	root := t.TempDir()
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	mustRun(t, "pki", "ca", in("ca"))
	mustRun(t, "pki", "operator", in("alice"), "--ca", in("ca"), "--name", "alice")
	mustRun(t, "pki", "operator", in("bob"), "--ca", in("ca"), "--name", "bob")
	caCert := readCert(t, in("ca", "ca.pem"))
	alice := creds.SerialText(readCert(t, in("alice", "operator.pem")).SerialNumber)
	bob := creds.SerialText(readCert(t, in("bob", "operator.pem")).SerialNumber)
	crl := in("ca", "crl.pem")

	out := mustRun(t, "pki", "revoke", "--ca", in("ca"), in("alice", "operator.pem"), "--reason", "keyCompromise")
	if !strings.Contains(out, `revoked "alice"`) || !strings.Contains(out, alice) || !strings.Contains(out, "kill -HUP") {
		t.Errorf("output:\n%s", out)
	}
	checkModes(t, map[string]os.FileMode{crl: 0o644})
	rl := readCRLFile(t, crl, caCert)
	if rl.Number.Int64() != 1 || !slices.Equal(serials(rl), []string{alice}) || rl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Fatalf("CRL number %v, serials %v", rl.Number, serials(rl))
	}
	if d := time.Until(rl.NextUpdate); d < (defaultCRLDays-1)*day || d > defaultCRLDays*day {
		t.Errorf("next update %v, want in %d days", rl.NextUpdate, defaultCRLDays)
	}
	if time.Since(rl.ThisUpdate) > time.Minute {
		t.Errorf("this update %v, want now", rl.ThisUpdate)
	}
	if c, err := creds.LoadCRL(crl, []*x509.Certificate{caCert}); err != nil || c.Serials() != 1 {
		t.Fatalf("creds.LoadCRL: %v, %v", c, err)
	}

	// Again: nothing to do, the file stays as it is.
	before := tufrepotest.ReadFile(t, crl)
	out = mustRun(t, "pki", "revoke", "--ca", in("ca"), in("alice", "operator.pem"))
	if !strings.Contains(out, "already revoked: "+alice) || !bytes.Equal(before, tufrepotest.ReadFile(t, crl)) {
		t.Errorf("second revocation of alice rewrote the CRL or said %q", out)
	}

	// Bob, alice again in the same run: only bob is added.
	res := decodeJSON[crlResult](t, mustRun(t, "-o", "json", "pki", "revoke", "--ca", in("ca"),
		in("bob", "operator.pem"), in("alice", "operator.pem"), "--reason", "superseded", "--days", "7"))
	if !slices.Equal(res.Added, []string{bob}) || !slices.Equal(res.Already, []string{alice}) || res.Number != "2" || len(res.Revoked) != 2 {
		t.Errorf("json result %+v", res)
	}
	rl = readCRLFile(t, crl, caCert)
	if rl.Number.Int64() != 2 || !slices.Equal(serials(rl), []string{alice, bob}) ||
		rl.RevokedCertificateEntries[0].ReasonCode != 1 || rl.RevokedCertificateEntries[1].ReasonCode != 4 {
		t.Fatalf("CRL number %v, serials %v", rl.Number, serials(rl))
	}
	if d := time.Until(rl.NextUpdate); d < 6*day || d > 7*day {
		t.Errorf("next update %v, want in 7 days", rl.NextUpdate)
	}

	// --list reads ca.pem only: it works without the key, writes nothing.
	before = tufrepotest.ReadFile(t, crl)
	if err := os.Rename(in("ca", "ca.key"), in("ca.key.offline")); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "pki", "revoke", "--ca", in("ca"), "--list")
	if err := os.Rename(in("ca.key.offline"), in("ca", "ca.key")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, alice) || !strings.Contains(out, bob) || !strings.Contains(out, "number 2") ||
		!strings.Contains(out, "keyCompromise") || !strings.Contains(out, "superseded") || !bytes.Equal(before, tufrepotest.ReadFile(t, crl)) {
		t.Errorf("--list:\n%s", out)
	}

	mustRun(t, "pki", "revoke", "--ca", in("ca"), "--renew")
	rl = readCRLFile(t, crl, caCert)
	if rl.Number.Int64() != 3 || !slices.Equal(serials(rl), []string{alice, bob}) {
		t.Fatalf("renewed CRL number %v, serials %v", rl.Number, serials(rl))
	}

	// A CA without a CRL lists nothing.
	mustRun(t, "pki", "ca", in("ca2"))
	if out := mustRun(t, "pki", "revoke", "--ca", in("ca2"), "--list"); !strings.Contains(out, "nothing revoked") {
		t.Errorf("--list without a CRL: %q", out)
	}
}

// TestPKIRevokeRefused: a certificate of another CA, a CRL the CA did not
// sign and usage errors are refused, and the CRL is left as it was.
func TestPKIRevokeRefused(t *testing.T) {
	root := t.TempDir()
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	mustRun(t, "pki", "ca", in("ca"))
	mustRun(t, "pki", "ca", in("other"))
	mustRun(t, "pki", "operator", in("alice"), "--ca", in("ca"), "--name", "alice")
	mustRun(t, "pki", "operator", in("eve"), "--ca", in("other"), "--name", "eve")
	mustRun(t, "pki", "revoke", "--ca", in("ca"), in("alice", "operator.pem"))
	mustRun(t, "pki", "revoke", "--ca", in("other"), in("eve", "operator.pem"))
	crl := in("ca", "crl.pem")
	good := tufrepotest.ReadFile(t, crl)

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"foreign certificate", []string{in("eve", "operator.pem")}, exitFailure, "was not issued by the CA"},
		{"foreign among others", []string{in("alice", "operator.pem"), in("eve", "operator.pem")}, exitFailure, "was not issued by the CA"},
		{"not a certificate", []string{in("alice", "operator.key")}, exitFailure, "no PEM certificate"},
		{"missing certificate", []string{in("nope.pem")}, exitFailure, "no such file"},
		{"nothing to revoke", nil, exitUsage, "missing CERT.pem"},
		{"list with a certificate", []string{"--list", in("alice", "operator.pem")}, exitUsage, "--list takes no certificate"},
		{"renew with a certificate", []string{"--renew", in("alice", "operator.pem")}, exitUsage, "--renew revokes nothing"},
		{"bad reason", []string{"--reason", "stolen", in("alice", "operator.pem")}, exitUsage, "keyCompromise"},
		{"bad days", []string{"--days", "0", in("alice", "operator.pem")}, exitUsage, "--days 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"pki", "revoke", "--ca", in("ca")}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d mentioning %q", r.code, r.stdout, r.stderr, tt.code, tt.msg)
			}
			if !bytes.Equal(good, tufrepotest.ReadFile(t, crl)) {
				t.Error("the CRL was changed")
			}
		})
	}

	// The CA's crl.pem replaced by another CA's: refused, not overwritten
	// (rewriting it would drop what it revokes).
	foreign := tufrepotest.ReadFile(t, in("other", "crl.pem"))
	if err := os.WriteFile(crl, foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "pki", "revoke", "--ca", in("ca"), in("alice", "operator.pem"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "fix or remove the existing CRL") || !bytes.Equal(foreign, tufrepotest.ReadFile(t, crl)) {
		t.Errorf("a CRL of another CA: exit %d, stderr %q", r.code, r.stderr)
	}
}
