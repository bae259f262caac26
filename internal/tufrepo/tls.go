package tufrepo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// selfSignedValidity is how long a generated certificate is valid.
const selfSignedValidity = 365 * 24 * time.Hour

// GenerateSelfSigned returns DIR/tls/cert.pem and DIR/tls/key.pem, a
// self-signed ECDSA P-256 pair for localhost, 127.0.0.1, ::1 and hosts (IP
// addresses or DNS names). An existing pair is reused while it is valid for
// at least another day and covers every host, so devices told to trust
// cert.pem keep trusting the server across restarts; otherwise a new pair
// replaces it. The certificate is its own CA: a client trusts it by adding
// cert.pem to its root pool.
func GenerateSelfSigned(dir string, hosts ...string) (certPath, keyPath string, err error) {
	tdir := filepath.Join(dir, tlsDir)
	certPath, keyPath = filepath.Join(tdir, "cert.pem"), filepath.Join(tdir, "key.pem")
	names := append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	if reusable(certPath, keyPath, names) {
		return certPath, keyPath, nil
	}
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"ocfupdate repository"}, CommonName: "ocfupdate repository"},
		NotBefore:             now.Add(-time.Hour), // tolerate clocks a little behind
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range names {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	// Key first: a cert.pem without its key would be reused by nobody, but a
	// new cert.pem beside an old key.pem would fail to load.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("self-signed: %w", err)
	}
	return certPath, keyPath, nil
}

// reusable reports whether the pair at certPath/keyPath loads, matches,
// stays valid for a day and covers names.
func reusable(certPath, keyPath string, names []string) bool {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil || pair.Leaf == nil {
		return false
	}
	leaf := pair.Leaf
	if time.Now().Add(24 * time.Hour).After(leaf.NotAfter) {
		return false
	}
	for _, h := range names {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}

// LoadTLSConfig loads a certificate and key (PEM) into a server TLS config
// (TLS 1.2 or later).
func LoadTLSConfig(certPath, keyPath string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load TLS pair %s: %w", certPath, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
