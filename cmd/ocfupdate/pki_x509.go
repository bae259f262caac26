package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/creds"
)

// File names in the directories pki writes.
const (
	caCertFile       = "ca.pem"
	caKeyFile        = "ca.key"
	deviceCertFile   = "device.pem"
	deviceKeyFile    = "device.key"
	operatorCertFile = "operator.pem"
	operatorKeyFile  = "operator.key"
	credsFileName    = "creds.json"
	aclFileName      = "acl.json"
	crlFileName      = "crl.pem"
)

// Modes of what pki writes: secrets for the owner alone, the rest readable
// by all and writable by the owner only (what internal/creds demands).
const (
	modeSecret os.FileMode = 0o600
	modePublic os.FileMode = 0o644
)

// backdate is how far a certificate's validity starts in the past, so that
// a device whose clock lags a little accepts it at once.
const backdate = time.Hour

// newP256Key makes an ECDSA P-256 key: the curve of the CoAPs certificate
// cipher suites (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8).
func newP256Key() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// serialNumber is a random positive 127-bit serial, as RFC 5280 allows
// (at most 20 octets) and CAs recommend (unpredictable).
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyPEM encodes k as PKCS#8 PEM.
func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newCA makes a self-signed CA named name, valid for days. It may sign end
// certificates only (path length 0): a quick-start CA has no business
// delegating.
func newCA(name string, days int, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := newP256Key()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	return cert, key, nil
}

// authority is a CA loaded from a directory pki ca made.
type authority struct {
	dir     string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// loadCA reads DIR/ca.pem and DIR/ca.key, with the permission checks
// ocfupdated applies: a key others may read is refused.
func loadCA(dir string) (*authority, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	} else if !fi.IsDir() {
		return nil, usagef("--ca %s: want the CA's directory (with %s and %s, made by \"ocfupdate pki ca\")", dir, caCertFile, caKeyFile)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	cert, err := loadCACert(dir)
	if err != nil {
		return nil, err
	}
	kb, err := creds.ReadSecret(keyPath)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	key, err := parseECKey(kb)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s is not the key of %s", keyPath, certPath)
	}
	return &authority{dir: dir, cert: cert, key: key, certPEM: certPEM(cert.Raw)}, nil
}

// loadCACert reads DIR/ca.pem alone, for what needs no signature (pki
// revoke --list): it must not be writable by group or others.
func loadCACert(dir string) (*x509.Certificate, error) {
	certPath := filepath.Join(dir, caCertFile)
	cb, err := creds.ReadProtected(certPath)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: %s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", certPath, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("ca: %s is not a CA certificate", certPath)
	}
	return cert, nil
}

// parseECKey reads an ECDSA key, PKCS#8 or SEC 1 PEM. Its errors never
// quote the key.
func parseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM private key")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY or EC PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, errors.New("the private key does not parse")
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ek, nil
}

// issue signs tmpl's subject and extensions with a new P-256 key, valid
// from now for days but never beyond the CA (a certificate outliving its
// issuer would not verify anyway).
func (ca *authority) issue(tmpl *x509.Certificate, days int, now time.Time) (cert *x509.Certificate, key *ecdsa.PrivateKey, err error) {
	if now.After(ca.cert.NotAfter) {
		return nil, nil, fmt.Errorf("ca: %s expired on %s", filepath.Join(ca.dir, caCertFile), timeText(ca.cert.NotAfter))
	}
	if key, err = newP256Key(); err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = serialNumber(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.AddDate(0, 0, days)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	return cert, key, nil
}

// writePair writes a certificate (mode 0644) and its key (0600), refusing
// to replace either.
func writePair(certPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kp, err := keyPEM(key)
	if err != nil {
		return err
	}
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	// The key first: a certificate without its key is useless, a key
	// without its certificate harmless.
	if err := writeNew(keyPath, kp, modeSecret); err != nil {
		return err
	}
	return writeNew(certPath, certPEM(cert.Raw), modePublic)
}

// copyCACert puts the CA certificate into dir (the trust anchor a device
// or operator needs next to its own files), unless the very same file is
// already there.
func (ca *authority) copyCACert(dir string) (path string, wrote bool, err error) {
	path = filepath.Join(dir, caCertFile)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && string(old) == string(ca.certPEM):
		return path, false, nil
	case err == nil:
		if blk, _ := pem.Decode(old); blk != nil && string(blk.Bytes) == string(ca.cert.Raw) {
			return path, false, nil // the same certificate, formatted differently
		}
		return "", false, fmt.Errorf("%s already exists and is another certificate; remove it or choose another directory", path)
	case !os.IsNotExist(err):
		return "", false, fmt.Errorf("%s: %w", path, err)
	}
	if err := writeNew(path, ca.certPEM, modePublic); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// issued is a certificate written to disk with its key and the CA
// certificate beside it.
type issued struct {
	cert    *x509.Certificate
	caPath  string
	wroteCA bool
}

// issueInto issues a certificate from tmpl and writes it, its key and a
// copy of the CA certificate into dir (created private).
func (ca *authority) issueInto(dir, certPath, keyPath string, tmpl *x509.Certificate, days int) (issued, error) {
	cert, key, err := ca.issue(tmpl, days, time.Now())
	if err != nil {
		return issued{}, err
	}
	if err := mkdirPrivate(dir); err != nil {
		return issued{}, err
	}
	if err := writePair(certPath, keyPath, cert, key); err != nil {
		return issued{}, err
	}
	caPath, wrote, err := ca.copyCACert(dir)
	if err != nil {
		return issued{}, err
	}
	return issued{cert: cert, caPath: caPath, wroteCA: wrote}, nil
}
