package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

// Certificate revocation end to end: the real "ocfupdate pki" makes the
// CA, the operators and the CRL; a real ocfupdated enforces the CRL and
// reads it again on SIGHUP (docs/security.md).

// buildCLI builds the ocfupdate command into a temporary directory and
// returns a function running it.
func buildCLI(t *testing.T) func(args ...string) string {
	t.Helper()
	cli := filepath.Join(t.TempDir(), "ocfupdate")
	if out, err := exec.Command("go", "build", "-o", cli, "../ocfupdate").CombinedOutput(); err != nil {
		t.Fatalf("build ocfupdate: %v\n%s", err, out)
	}
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ocfupdate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
}

// operatorOpts are the DTLS options of an operator made by pki operator.
func operatorOpts(t *testing.T, dir string) []piondtls.ClientOption {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatal("no CA certificate")
	}
	return []piondtls.ClientOption{
		piondtls.WithCertificates(cert),
		piondtls.WithRootCAs(roots),
		piondtls.WithServerName("127.0.0.1"),
		piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
	}
}

func serialOf(t *testing.T, certFile string) string {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return creds.SerialText(credstest.Serial(t, b))
}

// hangUp sends SIGHUP and waits until the daemon has logged the n-th
// reload (of the CRL or a failed one).
func hangUp(t *testing.T, d *daemon, n int) {
	t.Helper()
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool {
		s := d.Stderr()
		return strings.Count(s, "crl reloaded")+strings.Count(s, "reload failed") >= n
	})
}

// TestRevokeAndReload: two operators read the device; pki revoke one and
// SIGHUP the daemon: the revoked one's handshake fails, logged with its
// serial and subject, while the other still works; an ACL change comes
// with the same SIGHUP. A broken CRL file on the next SIGHUP is logged and
// the CRL in force stays.
func TestRevokeAndReload(t *testing.T) {
	cli := buildCLI(t)
	root := t.TempDir()
	in := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	devACL := in("dev", "acl.json")
	cli("pki", "ca", in("ca"))
	cli("pki", "device", in("dev"), "--ca", in("ca"), "--id", "0f5a6f3e-1d2c-4b5a-8e9f-0000000000d1")
	cli("pki", "operator", in("alice"), "--ca", in("ca"), "--name", "alice", "--acl", devACL)
	cli("pki", "operator", in("bob"), "--ca", in("ca"), "--name", "bob", "--acl", devACL)
	cli("pki", "operator", in("carol"), "--ca", in("ca"), "--name", "carol", "--acl", in("carol", "acl.json")) // not the device's
	cli("pki", "revoke", "--ca", in("ca"), "--renew")                                                          // the first CRL, empty
	crl := in("ca", "crl.pem")

	d := startSecureDaemon(t, t.TempDir(), "--creds", in("dev", "creds.json"), "--acl", devACL, "--crl", crl)
	sessions := map[string]*udpClient.Conn{}
	for _, op := range []string{"alice", "bob"} {
		cc := mustDialSecure(t, d.Secure, operatorOpts(t, in(op)))
		if code, _ := request(t, cc, codes.GET, "/oc/swu", nil); code != codes.Content {
			t.Fatalf("%s GET before the revocation: %v", op, code)
		}
		sessions[op] = cc
	}
	carol := mustDialSecure(t, d.Secure, operatorOpts(t, in("carol")))
	if code, _ := request(t, carol, codes.GET, "/oc/swu", nil); code != codes.Forbidden {
		t.Fatalf("carol GET without an ACL entry: %v, want 4.03", code)
	}

	cli("pki", "revoke", "--ca", in("ca"), in("alice", "operator.pem"), "--reason", "keyCompromise")
	grantRead(t, devACL, "carol")
	hangUp(t, d, 1)

	// The session alice opened before the revocation is closed with every
	// other: it would otherwise keep its handshake's authentication.
	select {
	case <-sessions["alice"].Done():
	case <-time.After(10 * time.Second):
		t.Fatal("alice's session from before the revocation is still open")
	}
	waitFor(t, "the sessions closed in the log", func() bool {
		return strings.Contains(d.Stderr(), "closed the CoAPs sessions")
	})
	if _, err := dialSecure(t, d.Secure, operatorOpts(t, in("alice")), 2*time.Second); err == nil {
		t.Fatal("the revoked certificate's handshake succeeded")
	}
	waitFor(t, "the refusal in the log", func() bool {
		return strings.Contains(d.Stderr(), "client certificate refused: revoked")
	})
	logs := d.Stderr()
	if !strings.Contains(logs, "serial="+serialOf(t, in("alice", "operator.pem"))) || !strings.Contains(logs, `subject="CN=alice"`) {
		t.Errorf("the refusal does not name alice's serial and subject:\n%s", logs)
	}
	bob := mustDialSecure(t, d.Secure, operatorOpts(t, in("bob")))
	if code, _ := request(t, bob, codes.GET, "/oc/swu", nil); code != codes.Content {
		t.Fatalf("bob GET after alice's revocation: %v", code)
	}
	carol = mustDialSecure(t, d.Secure, operatorOpts(t, in("carol"))) // her old session was closed too
	if code, _ := request(t, carol, codes.GET, "/oc/swu", nil); code != codes.Content {
		t.Fatalf("carol GET after her ACL entry was reloaded: %v", code)
	}

	// A broken file: logged, and the CRL in force stays.
	if err := os.WriteFile(crl, []byte("-----BEGIN X509 CRL-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hangUp(t, d, 2)
	if !strings.Contains(d.Stderr(), "crl kept as it was") {
		t.Errorf("no error for the broken CRL:\n%s", d.Stderr())
	}
	if _, err := dialSecure(t, d.Secure, operatorOpts(t, in("alice")), 2*time.Second); err == nil {
		t.Fatal("a broken CRL file let the revoked certificate in")
	}
	mustDialSecure(t, d.Secure, operatorOpts(t, in("bob")))
}

// grantRead adds an entry letting cn read everything to the ACL file.
func grantRead(t *testing.T, path, cn string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, map[string]any{"subject": map[string]string{"cn": cn}, "resources": []string{"*"}, "permission": 2})
	credstest.WriteJSON(t, filepath.Dir(path), filepath.Base(path), entries, 0o644)
}

// TestCRLAtStart: a CRL another CA signed, a malformed one, or one without
// a certificate to check it against stops the daemon at start with a
// clear error; an expired one is enforced with a warning on stderr.
func TestCRLAtStart(t *testing.T) {
	p := provision(t, nil, nil)
	stranger := credstest.NewCA(t, "strangers")
	next := time.Now().Add(24 * time.Hour)
	for _, tt := range []struct {
		name string
		crl  []byte
		args []string // instead of p.args()
		want string
	}{
		{"signed by another CA", stranger.CRL(t, 1, next), nil, "signed by none of the configured CAs"},
		{"malformed", []byte("not a CRL\n"), nil, `no PEM "X509 CRL" block`},
		{"no certificate", p.ca.CRL(t, 1, next), []string{}, "--crl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := credstest.WriteFile(t, t.TempDir(), "crl.pem", tt.crl, 0o644)
			args := tt.args
			if args == nil {
				args = p.args()
			}
			args = append([]string{"--data-dir", t.TempDir(), "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0", "--crl", path}, args...)
			out, err := exec.Command(daemonBin, args...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) || strings.Contains(string(out), "listening") {
				t.Fatalf("ocfupdated %v: %v, want exit 1 mentioning %q:\n%s", args, err, tt.want, out)
			}
		})
	}

	// Expired: enforced, with a warning.
	aliceCert, aliceKey := p.ca.Issue(t, "alice")
	blk, _ := pem.Decode(aliceCert)
	alice, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	path := credstest.WriteFile(t, t.TempDir(), "crl.pem", p.ca.CRL(t, 3, time.Now().Add(-time.Minute), alice.SerialNumber, big.NewInt(42)), 0o644)
	d := startSecureDaemon(t, t.TempDir(), append(p.args(), "--crl", path)...)
	if s := d.Stderr(); !strings.Contains(s, "WARNING: crl "+path) || !strings.Contains(s, "expired") || !strings.Contains(s, "still enforced") {
		t.Fatalf("no warning about the expired CRL:\n%s", s)
	}
	pair, err := tls.X509KeyPair(aliceCert, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	opts := []piondtls.ClientOption{
		piondtls.WithCertificates(pair), piondtls.WithRootCAs(p.ca.Pool()), piondtls.WithServerName("127.0.0.1"),
		piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
	}
	if _, err := dialSecure(t, d.Secure, opts, 2*time.Second); err == nil {
		t.Fatal("an expired CRL was not enforced")
	}
	waitFor(t, "the refusal warning", func() bool {
		return strings.Contains(d.Stderr(), "level=WARN") && strings.Contains(d.Stderr(), "EXPIRED and is still enforced")
	})
	mustDialSecure(t, d.Secure, certOpts(t, p.ca, p.ca, "bob"))
}
