package creds_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	opKey  = []byte("operator-key-0123")
	srcKey = []byte("source-key-456789")
)

// provision writes a complete credential set into a new directory and
// returns the directory; files get the modes a provisioning script would
// give them.
func provision(t *testing.T, ca *credstest.CA) string {
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.Issue(t, "uuid:0f5a6f3e-1d2c-4b5a-8e9f-000000000001")
	credstest.WriteFile(t, dir, "device.pem", cert, 0o644)
	credstest.WriteFile(t, dir, "device.key", key, 0o600)
	credstest.WriteFile(t, dir, "ca.pem", ca.PEM, 0o644)
	credstest.WriteFile(t, dir, "repo-ca.pem", credstest.NewCA(t, "repo").PEM, 0o644)
	credstest.WriteJSON(t, dir, "creds.json", map[string]any{
		"psk":  []map[string]string{{"identity": "operator", "key_hex": hex.EncodeToString(opKey)}},
		"cert": "device.pem", "key": "device.key", "ca": []string{"ca.pem"},
		"source": map[string]any{
			"psk": map[string]string{"identity": "boiler-17", "key_hex": hex.EncodeToString(srcKey)},
			"ca":  []string{"repo-ca.pem"},
		},
	}, 0o600)
	return dir
}

func TestLoad(t *testing.T) {
	dir := provision(t, credstest.NewCA(t, "operators"))
	c, err := creds.Load(filepath.Join(dir, "creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ids := c.PSKIdentities(); len(ids) != 1 || ids[0] != "operator" {
		t.Fatalf("identities %v", ids)
	}
	if k, err := c.LookupPSK([]byte("operator")); err != nil || !bytes.Equal(k, opKey) {
		t.Fatalf("LookupPSK(operator) = %q, %v", k, err)
	}
	if _, err := c.LookupPSK([]byte("mallory")); !errors.Is(err, creds.ErrUnknownIdentity) {
		t.Fatalf("LookupPSK(mallory): %v", err)
	}
	if c.Certificate == nil || c.Certificate.Leaf.Subject.CommonName != "uuid:0f5a6f3e-1d2c-4b5a-8e9f-000000000001" {
		t.Fatalf("certificate %+v", c.Certificate)
	}
	if c.ClientCAs == nil || c.SourcePSK == nil || c.SourcePSK.Identity != "boiler-17" ||
		!bytes.Equal(c.SourcePSK.Key, srcKey) || len(c.SourceCAs) != 1 || !c.HasServerCredentials() {
		t.Fatalf("credentials %+v", c)
	}
}

// TestPermissions: a secret other users could read, or a trust anchor they
// could change, is refused with an error that names the file, its mode
// and the fix.
func TestPermissions(t *testing.T) {
	for _, tt := range []struct {
		file string
		mode os.FileMode
		fix  string
	}{
		{"creds.json", 0o644, "chmod 600"},
		{"creds.json", 0o640, "chmod 600"},
		{"creds.json", 0o604, "chmod 600"},
		{"device.key", 0o644, "chmod 600"},
		{"device.key", 0o660, "chmod 600"},
		{"device.pem", 0o664, "chmod go-w"},
		{"ca.pem", 0o646, "chmod go-w"},
		{"repo-ca.pem", 0o666, "chmod go-w"},
	} {
		t.Run(fmt.Sprintf("%s %04o", tt.file, tt.mode), func(t *testing.T) {
			dir := provision(t, credstest.NewCA(t, "operators"))
			p := filepath.Join(dir, tt.file)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := creds.Load(filepath.Join(dir, "creds.json"))
			if !errors.Is(err, creds.ErrInsecurePermissions) {
				t.Fatalf("err %v, want ErrInsecurePermissions", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, p) || !strings.Contains(msg, fmt.Sprintf("%04o", tt.mode)) || !strings.Contains(msg, tt.fix) {
				t.Fatalf("error %q does not name the file, its mode and %q", msg, tt.fix)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	ca := credstest.NewCA(t, "operators")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secretHex := hex.EncodeToString([]byte("zz-secret-key-material"))
	for _, tt := range []struct {
		name string
		file map[string]any
		keys func(dir string) // replace device.pem/device.key
		want string
	}{
		{name: "short key", file: map[string]any{"psk": []map[string]string{{"identity": "a", "key_hex": "00112233"}}}, want: "4 bytes"},
		{name: "long key", file: map[string]any{"psk": []map[string]string{{"identity": "a", "key_hex": strings.Repeat("00", 65)}}}, want: "65 bytes"},
		{name: "not hex", file: map[string]any{"psk": []map[string]string{{"identity": "a", "key_hex": secretHex + "zz"}}}, want: "not hexadecimal"},
		{name: "empty identity", file: map[string]any{"psk": []map[string]string{{"identity": "", "key_hex": secretHex}}}, want: "identity must be"},
		{name: "control character", file: map[string]any{"psk": []map[string]string{{"identity": "a\nb", "key_hex": secretHex}}}, want: "printable"},
		{name: "duplicate identity", file: map[string]any{"psk": []map[string]string{{"identity": "a", "key_hex": secretHex}, {"identity": "a", "key_hex": secretHex}}}, want: "twice"},
		{name: "unknown field", file: map[string]any{"psks": []string{}}, want: "unknown field"},
		{name: "cert without key", file: map[string]any{"cert": "device.pem", "ca": []string{"ca.pem"}}, want: "both or neither"},
		{name: "cert without ca", file: map[string]any{"cert": "device.pem", "key": "device.key"}, want: "cert without ca"},
		{name: "ca without cert", file: map[string]any{"ca": []string{"ca.pem"}}, want: "ca without cert"},
		{name: "missing ca file", file: map[string]any{"cert": "device.pem", "key": "device.key", "ca": []string{"nope.pem"}}, want: "nope.pem"},
		{name: "ca file without certificates", file: map[string]any{"cert": "device.pem", "key": "device.key", "ca": []string{"device.key"}}, want: "no PEM certificate"},
		{name: "rsa key", file: map[string]any{"cert": "device.pem", "key": "device.key", "ca": []string{"ca.pem"}},
			keys: func(dir string) { writeSelfSigned(t, dir, rsaKey) }, want: "ECDSA P-256"},
		{name: "P-384 key", file: map[string]any{"cert": "device.pem", "key": "device.key", "ca": []string{"ca.pem"}},
			keys: func(dir string) { writeSelfSigned(t, dir, p384) }, want: "ECDSA P-256"},
		{name: "bad source psk", file: map[string]any{"source": map[string]any{"psk": map[string]string{"identity": "d", "key_hex": "00"}}}, want: "source.psk"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := provision(t, ca)
			if tt.keys != nil {
				tt.keys(dir)
			}
			p := credstest.WriteJSON(t, dir, "creds.json", tt.file, 0o600)
			_, err := creds.Load(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secretHex) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

// writeSelfSigned replaces device.pem and device.key with a self-signed
// certificate for key.
func writeSelfSigned(t *testing.T, dir string, key crypto.Signer) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: bigOne()}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	credstest.WriteFile(t, dir, "device.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	credstest.WriteFile(t, dir, "device.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
}

// TestSecretsNeverShown: keys do not appear in any printed, logged or
// marshalled form of the credentials.
func TestSecretsNeverShown(t *testing.T) {
	dir := provision(t, credstest.NewCA(t, "operators"))
	c, err := creds.Load(filepath.Join(dir, "creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "creds", c, "psk", c.SourcePSK, "key", c.SourcePSK.Key)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "creds", c, "psk", c.SourcePSK, "key", c.SourcePSK.Key)
	js, err := json.Marshal(c.SourcePSK)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join([]string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %x %q", c.SourcePSK, c.SourcePSK, c.SourcePSK, c.SourcePSK.Key, c.SourcePSK.Key, c.SourcePSK.Key),
		logged.String(), string(js),
	}, "\n")
	for _, k := range [][]byte{opKey, srcKey} {
		for _, form := range []string{string(k), hex.EncodeToString(k), fmt.Sprint([]byte(k))} {
			if strings.Contains(out, form) {
				t.Fatalf("a key shows as %q in:\n%s", form, out)
			}
		}
	}
	if !strings.Contains(out, "operator") || !strings.Contains(out, "boiler-17") {
		t.Fatalf("the summary should name the identities:\n%s", out)
	}
}

func TestDialCoAPSBadAddress(t *testing.T) {
	dir := provision(t, credstest.NewCA(t, "operators"))
	c, err := creds.Load(filepath.Join(dir, "creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DialCoAPS(context.Background(), "no-port"); err == nil {
		t.Fatal("an address without a port was dialled")
	}
}

func bigOne() *big.Int { return big.NewInt(1) }
