package creds_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

// operatorCert is a client certificate issued by a CA, and the chains a
// handshake would have verified for it.
type operatorCert struct {
	cert   *x509.Certificate
	chains [][]*x509.Certificate
}

func issueOperator(t *testing.T, ca *credstest.CA, cn string) operatorCert {
	t.Helper()
	certPEM, _ := ca.Issue(t, cn)
	blk, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	return operatorCert{cert: cert, chains: chains}
}

// logBuffer is a slog text logger writing into a buffer the test reads.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// TestRevocationCheck: a revoked serial is refused with its serial and
// subject logged at info; another serial of the same CA passes, and so
// does a certificate of another trust anchor that has no CRL.
func TestRevocationCheck(t *testing.T) {
	ca, other := credstest.NewCA(t, "operators"), credstest.NewCA(t, "monitors")
	alice, bob := issueOperator(t, ca, "alice"), issueOperator(t, ca, "bob")
	carol := issueOperator(t, other, "carol")
	dir := t.TempDir()
	path := credstest.WriteFile(t, dir, "crl.pem", ca.CRL(t, 1, time.Now().Add(24*time.Hour), alice.cert.SerialNumber), 0o644)
	log, logs := logBuffer()
	r, err := creds.NewRevocation(path, []*x509.Certificate{ca.Cert, other.Cert}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Expired(); err != nil {
		t.Fatalf("Expired: %v", err)
	}

	for _, tt := range []struct {
		name    string
		op      operatorCert
		revoked bool
	}{
		{"revoked serial", alice, true},
		{"another serial of the CA", bob, false},
		{"a certificate of a CA without CRL", carol, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			err := r.VerifyPeerCertificate(nil, tt.op.chains)
			if !tt.revoked {
				if err != nil || logs.Len() != 0 {
					t.Fatalf("refused: %v; log %q", err, logs)
				}
				return
			}
			var re *creds.RevokedError
			if !errors.Is(err, creds.ErrRevoked) || !errors.As(err, &re) || re.Serial.Cmp(tt.op.cert.SerialNumber) != 0 ||
				re.Reason != 1 || !strings.Contains(err.Error(), "keyCompromise") {
				t.Fatalf("err %v, want the revocation of serial %s", err, creds.SerialText(tt.op.cert.SerialNumber))
			}
			line := logs.String()
			for _, want := range []string{"level=INFO", "revoked", "serial=" + creds.SerialText(tt.op.cert.SerialNumber), `subject="CN=alice"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q lacks %q", line, want)
				}
			}
		})
	}
}

// TestLoadCRLRefused: a CRL the device must not trust, or cannot read, is
// an error at load that says why.
func TestLoadCRLRefused(t *testing.T) {
	ca, stranger := credstest.NewCA(t, "operators"), credstest.NewCA(t, "strangers")
	next := time.Now().Add(24 * time.Hour)
	good := ca.CRL(t, 1, next, big.NewInt(7))
	garbledDER := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte("not a CRL at all")})
	for _, tt := range []struct {
		name string
		data []byte
		mode os.FileMode
		cas  []*x509.Certificate
		want string
	}{
		{"signed by another CA", stranger.CRL(t, 1, next, big.NewInt(7)), 0o644, []*x509.Certificate{ca.Cert}, "signed by none of the configured CAs"},
		{"not PEM", []byte("hello\n"), 0o644, []*x509.Certificate{ca.Cert}, "no PEM \"X509 CRL\" block"},
		{"empty", nil, 0o644, []*x509.Certificate{ca.Cert}, "no PEM \"X509 CRL\" block"},
		{"truncated PEM", good[:len(good)/2], 0o644, []*x509.Certificate{ca.Cert}, "no PEM \"X509 CRL\" block"},
		{"PEM without a CRL in it", garbledDER, 0o644, []*x509.Certificate{ca.Cert}, "CRL 1:"},
		{"a certificate instead", ca.PEM, 0o644, []*x509.Certificate{ca.Cert}, "is \"CERTIFICATE\", want \"X509 CRL\""},
		{"trailing garbage", append(append([]byte{}, good...), "junk"...), 0o644, []*x509.Certificate{ca.Cert}, "not PEM after CRL 1"},
		{"two CRLs of one CA", append(append([]byte{}, good...), ca.CRL(t, 2, next)...), 0o644, []*x509.Certificate{ca.Cert}, "a second CRL"},
		{"group-writable", good, 0o664, []*x509.Certificate{ca.Cert}, "chmod go-w"},
		{"no CA", good, 0o644, nil, "no CA to check it against"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := credstest.WriteFile(t, t.TempDir(), "crl.pem", tt.data, tt.mode)
			c, err := creds.LoadCRL(path, tt.cas)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadCRL = %v, %v; want an error naming %s with %q", c, err, path, tt.want)
			}
		})
	}
	if _, err := creds.LoadCRL(filepath.Join(t.TempDir(), "missing.pem"), []*x509.Certificate{ca.Cert}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestExpiredCRLStillEnforced: a CRL past its nextUpdate loads, says it
// has expired, and still refuses what it lists, warning on each refusal.
func TestExpiredCRLStillEnforced(t *testing.T) {
	ca := credstest.NewCA(t, "operators")
	alice, bob := issueOperator(t, ca, "alice"), issueOperator(t, ca, "bob")
	path := credstest.WriteFile(t, t.TempDir(), "crl.pem", ca.CRL(t, 4, time.Now().Add(-time.Minute), alice.cert.SerialNumber), 0o644)
	log, logs := logBuffer()
	r, err := creds.NewRevocation(path, []*x509.Certificate{ca.Cert}, log)
	if err != nil {
		t.Fatalf("an expired CRL was not loaded: %v", err)
	}
	if err := r.Expired(); !errors.Is(err, creds.ErrCRLExpired) || !strings.Contains(err.Error(), "number 4") {
		t.Fatalf("Expired = %v, want ErrCRLExpired naming CRL number 4", err)
	}
	if err := r.VerifyPeerCertificate(nil, alice.chains); !errors.Is(err, creds.ErrRevoked) {
		t.Fatalf("the expired CRL was not enforced: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "EXPIRED") || !strings.Contains(l, `subject="CN=alice"`) {
		t.Fatalf("refusal under an expired CRL logged %q, want a warning", l)
	}
	if err := r.VerifyPeerCertificate(nil, bob.chains); err != nil {
		t.Fatalf("bob refused: %v", err)
	}
}

// TestRevocationReload: Reload puts a new CRL in force; a file that does
// not load, is signed by another CA, is missing, or would undo
// revocations (an older CRL number) is refused and the CRL in force stays.
func TestRevocationReload(t *testing.T) {
	ca, stranger := credstest.NewCA(t, "operators"), credstest.NewCA(t, "strangers")
	alice, bob := issueOperator(t, ca, "alice"), issueOperator(t, ca, "bob")
	next := time.Now().Add(24 * time.Hour)
	dir := t.TempDir()
	write := func(b []byte) { credstest.WriteFile(t, dir, "crl.pem", b, 0o644) }
	write(ca.CRL(t, 1, next, alice.cert.SerialNumber))
	log, _ := logBuffer()
	r, err := creds.NewRevocation(filepath.Join(dir, "crl.pem"), []*x509.Certificate{ca.Cert}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.VerifyPeerCertificate(nil, bob.chains); err != nil {
		t.Fatalf("bob refused before his revocation: %v", err)
	}

	write(ca.CRL(t, 2, next, alice.cert.SerialNumber, bob.cert.SerialNumber))
	c, err := r.Reload()
	if err != nil || c != r.CRL() || c.Serials() != 2 {
		t.Fatalf("Reload = %v, %v", c, err)
	}
	if err := r.VerifyPeerCertificate(nil, bob.chains); !errors.Is(err, creds.ErrRevoked) {
		t.Fatalf("bob accepted after the reload: %v", err)
	}

	for _, tt := range []struct {
		name string
		data []byte // nil: remove the file
		want string
	}{
		{"malformed", []byte("-----BEGIN X509 CRL-----\nnope\n"), "no PEM"},
		{"another CA", stranger.CRL(t, 9, next), "signed by none"},
		{"older CRL number", ca.CRL(t, 1, next, alice.cert.SerialNumber), "older than the 2 in force"},
		{"missing", nil, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.data == nil {
				if err := os.Remove(filepath.Join(dir, "crl.pem")); err != nil {
					t.Fatal(err)
				}
			} else {
				write(tt.data)
			}
			before := r.CRL()
			if _, err := r.Reload(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload: %v, want %q", err, tt.want)
			}
			if r.CRL() != before {
				t.Fatal("a refused file replaced the CRL in force")
			}
			if err := r.VerifyPeerCertificate(nil, bob.chains); !errors.Is(err, creds.ErrRevoked) {
				t.Fatalf("bob accepted after a refused reload: %v", err)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	for _, name := range creds.ReasonNames() {
		code, err := creds.ParseReason(strings.ToLower(name))
		if err != nil || creds.ReasonName(code) != name {
			t.Errorf("ParseReason(%q) = %d, %v", name, code, err)
		}
	}
	for _, bad := range []string{"", "certificateHold", "removeFromCRL", "stolen"} {
		if _, err := creds.ParseReason(bad); err == nil {
			t.Errorf("ParseReason(%q) accepted", bad)
		}
	}
	if got := creds.SerialText(big.NewInt(0x1a2b3c)); got != "1A:2B:3C" {
		t.Errorf("SerialText = %q", got)
	}
}
