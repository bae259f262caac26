package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

// coapClientOpenSSL finds libcoap's DTLS-capable client (Debian
// libcoap3-bin), skipping outside CI when it is not installed.
func coapClientOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("coap-client-openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("coap-client-openssl not found; .ci/run installs libcoap3-bin")
		}
		t.Skip("coap-client-openssl not installed (apt-get install libcoap3-bin)")
	}
	return p
}

// TestLibcoapCoAPs: libcoap's coap-client-openssl reads the update resource
// over CoAPs with a PSK (-u/-k) and with a certificate (-c/-j/-C); without
// credentials it cannot.
func TestLibcoapCoAPs(t *testing.T) {
	bin := coapClientOpenSSL(t)
	p := provision(t, nil, nil)
	d := startSecureDaemon(t, t.TempDir(), p.args()...)
	cert, key := p.ca.Issue(t, "libcoap-operator")
	certFile := credstest.WriteFile(t, p.dir, "client.pem", cert, 0o600)
	keyFile := credstest.WriteFile(t, p.dir, "client.key", key, 0o600)
	caFile := credstest.WriteFile(t, p.dir, "client-ca.pem", p.ca.PEM, 0o600)

	run := func(wait string, args ...string) ([]byte, string, error) {
		cmd := exec.CommandContext(ctxT(t), bin, append([]string{"-B", wait, "-o", "-", "-m", "get", "-A", "60"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.Bytes(), errb.String(), err
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"psk", []string{"-u", "operator", "-k", string(operatorKey)}},
		{"certificate", []string{"-c", certFile, "-j", keyFile, "-C", caFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := run("10", append(tt.args, d.Secure+"/oc/swu")...)
			if err != nil {
				t.Fatalf("coap-client-openssl: %v\n%s", err, stderr)
			}
			items := cborItems(t, string(out))
			if len(items) != 1 {
				t.Fatalf("output %q (stderr %s)", out, stderr)
			}
			rep, ok := items[0].(map[any]any)
			if !ok || rep["swupdatestate"] != "idle" || rep["signed"] != "vendor" {
				t.Fatalf("/oc/swu over CoAPs: %v", items[0])
			}
		})
	}
	t.Run("revoked certificate", func(t *testing.T) {
		// A second device with a CRL revoking one operator: libcoap with
		// that certificate is refused in the handshake, with the other
		// it reads.
		rcert, rkey := p.ca.Issue(t, "libcoap-revoked")
		rcertFile := credstest.WriteFile(t, p.dir, "revoked.pem", rcert, 0o600)
		rkeyFile := credstest.WriteFile(t, p.dir, "revoked.key", rkey, 0o600)
		crl := credstest.WriteFile(t, t.TempDir(), "crl.pem",
			p.ca.CRL(t, 1, time.Now().Add(time.Hour), credstest.Serial(t, rcert)), 0o644)
		rd := startSecureDaemon(t, t.TempDir(), append(p.args(), "--crl", crl)...)
		out, stderr, _ := run("2", "-c", rcertFile, "-j", rkeyFile, "-C", caFile, rd.Secure+"/oc/swu")
		if bytes.Contains(out, []byte("swupdatestate")) {
			t.Fatalf("read with a revoked certificate: %q (%s)", out, stderr)
		}
		waitFor(t, "the refusal in the device's log", func() bool {
			return strings.Contains(rd.Stderr(), `client certificate refused: revoked`) &&
				strings.Contains(rd.Stderr(), `subject="CN=libcoap-revoked"`)
		})
		if out, stderr, err := run("10", "-c", certFile, "-j", keyFile, "-C", caFile, rd.Secure+"/oc/swu"); err != nil ||
			!bytes.Contains(out, []byte("swupdatestate")) {
			t.Fatalf("the certificate not revoked: %v %q\n%s", err, out, stderr)
		}
	})
	t.Run("wrong psk", func(t *testing.T) {
		// The device cannot decrypt the handshake and stays silent.
		out, stderr, _ := run("2", "-u", "operator", "-k", "not-the-key-00000", d.Secure+"/oc/swu")
		if bytes.Contains(out, []byte("swupdatestate")) {
			t.Fatalf("read with a wrong key: %q (%s)", out, stderr)
		}
	})
}
