package creds

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a pre-shared key and its identity. 16 bytes is the 128 bits
// of the AES-128 suites; shorter keys can be guessed offline from one
// recorded handshake.
const (
	MinPSKLen      = 16
	MaxPSKLen      = 64
	MaxIdentityLen = 128
)

// ErrUnknownIdentity is returned by LookupPSK for an identity the file
// does not list.
var ErrUnknownIdentity = errors.New("unknown PSK identity")

// fileFormat is the JSON of the credential file.
type fileFormat struct {
	PSK    []pskJSON   `json:"psk"`
	Cert   string      `json:"cert"`
	Key    string      `json:"key"`
	CA     []string    `json:"ca"`
	Source *sourceJSON `json:"source"`
}

type pskJSON struct {
	Identity string `json:"identity"`
	KeyHex   string `json:"key_hex"`
}

type sourceJSON struct {
	PSK *pskJSON `json:"psk"`
	CA  []string `json:"ca"`
}

// Credentials are a loaded credential file. Its String and LogValue show
// what is configured, never a key.
type Credentials struct {
	// Path is the credential file.
	Path string

	// Certificate is the device's certificate chain and ECDSA P-256 key;
	// nil when the file names none.
	Certificate *tls.Certificate

	// ClientCAs are the trust anchors for client certificates; nil when
	// Certificate is nil.
	ClientCAs *x509.CertPool

	// ClientCACerts are the certificates of ClientCAs, in file order: a
	// CRL must be signed by one of them (NewRevocation).
	ClientCACerts []*x509.Certificate

	// SourcePSK is presented to coaps package servers; nil when none.
	SourcePSK *PSK

	// SourceCAs are trust anchors for package servers besides the system
	// roots.
	SourceCAs []*x509.Certificate

	psk map[string]Secret
}

// Load reads and checks the credential file at path and the files it names.
func Load(path string) (*Credentials, error) {
	b, err := ReadSecret(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	c, err := parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return c, nil
}

func parse(path string, b []byte) (*Credentials, error) {
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: data after the object")
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}

	c := &Credentials{Path: path, psk: make(map[string]Secret)}
	var errs []error
	for i, p := range f.PSK {
		k, err := p.parse()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("psk[%d]: %w", i, err))
		case c.psk[k.Identity] != nil:
			errs = append(errs, fmt.Errorf("psk[%d]: identity %q listed twice", i, k.Identity))
		default:
			c.psk[k.Identity] = k.Key
		}
	}
	switch {
	case (f.Cert == "") != (f.Key == ""):
		errs = append(errs, errors.New("cert and key go together: name both or neither"))
	case f.Cert != "":
		cert, err := loadKeyPair(rel(f.Cert), rel(f.Key))
		if err != nil {
			errs = append(errs, err)
		}
		c.Certificate = cert
		if len(f.CA) == 0 {
			errs = append(errs, errors.New("cert without ca: client certificates could not be verified"))
		}
	}
	if len(f.CA) > 0 {
		if f.Cert == "" {
			errs = append(errs, errors.New("ca without cert: certificate handshakes need the device's own cert and key"))
		}
		cas, err := loadCAs(f.CA, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca: %w", err))
		}
		c.ClientCAs = x509.NewCertPool()
		c.ClientCACerts = cas
		for _, ca := range cas {
			c.ClientCAs.AddCert(ca)
		}
	}
	if f.Source != nil {
		if f.Source.PSK != nil {
			k, err := f.Source.PSK.parse()
			if err != nil {
				errs = append(errs, fmt.Errorf("source.psk: %w", err))
			}
			c.SourcePSK = &k
		}
		cas, err := loadCAs(f.Source.CA, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("source.ca: %w", err))
		}
		c.SourceCAs = cas
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (p pskJSON) parse() (PSK, error) {
	if err := checkIdentity(p.Identity); err != nil {
		return PSK{}, err
	}
	key, err := hex.DecodeString(p.KeyHex)
	switch {
	case err != nil:
		// The decoder's message would quote the key.
		return PSK{}, fmt.Errorf("identity %q: key_hex is not hexadecimal", p.Identity)
	case len(key) < MinPSKLen || len(key) > MaxPSKLen:
		return PSK{}, fmt.Errorf("identity %q: key is %d bytes, want %d to %d", p.Identity, len(key), MinPSKLen, MaxPSKLen)
	}
	return PSK{Identity: p.Identity, Key: key}, nil
}

// checkIdentity accepts 1 to MaxIdentityLen bytes of printable UTF-8: an
// identity appears in logs and access control entries.
func checkIdentity(id string) error {
	switch {
	case id == "" || len(id) > MaxIdentityLen:
		return fmt.Errorf("identity must be 1 to %d bytes", MaxIdentityLen)
	case !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("identity %q must be printable UTF-8", id)
	}
	return nil
}

// loadKeyPair reads the device's certificate and its ECDSA P-256 key.
func loadKeyPair(certPath, keyPath string) (*tls.Certificate, error) {
	certPEM, err := ReadProtected(certPath)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	keyPEM, err := ReadSecret(keyPath)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert %s and key %s: %w", certPath, keyPath, err)
	}
	if k, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key %s: want an ECDSA P-256 key (the curve of the CoAPs certificate suites)", keyPath)
	}
	return &cert, nil
}

// loadCAs reads PEM trust anchors, at least one certificate per file.
func loadCAs(paths []string, rel func(string) string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		b, err := ReadProtected(rel(p))
		if err != nil {
			return nil, err
		}
		n := 0
		for {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rel(p), err)
			}
			out = append(out, c)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no PEM certificate in it", rel(p))
		}
	}
	return out, nil
}

// PSKIdentities lists the PSK identities of the file, sorted.
func (c *Credentials) PSKIdentities() []string {
	ids := make([]string, 0, len(c.psk))
	for id := range c.psk {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// LookupPSK returns a copy of the key of identity, or ErrUnknownIdentity.
// Its signature is pion/dtls's PSK callback.
func (c *Credentials) LookupPSK(identity []byte) ([]byte, error) {
	k, ok := c.psk[string(identity)]
	if !ok {
		return nil, ErrUnknownIdentity
	}
	return slices.Clone([]byte(k)), nil
}

// HasServerCredentials reports whether a CoAPs endpoint can authenticate
// anybody with these credentials: a PSK or a certificate.
func (c *Credentials) HasServerCredentials() bool {
	return len(c.psk) > 0 || c.Certificate != nil
}

// SourceRoots returns the trust anchors for package servers: the system
// roots (when system is set and the system has them) plus SourceCAs.
func (c *Credentials) SourceRoots(system bool) *x509.CertPool {
	var pool *x509.CertPool
	if system {
		pool, _ = x509.SystemCertPool()
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	for _, ca := range c.SourceCAs {
		pool.AddCert(ca)
	}
	return pool
}

// String summarises the credentials without a key.
func (c *Credentials) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "credentials %s: psk identities %v", c.Path, c.PSKIdentities())
	if c.Certificate != nil && c.Certificate.Leaf != nil {
		fmt.Fprintf(&b, ", certificate %q", c.Certificate.Leaf.Subject.CommonName)
	}
	if c.SourcePSK != nil {
		fmt.Fprintf(&b, ", source psk identity %q", c.SourcePSK.Identity)
	}
	fmt.Fprintf(&b, ", %d source CAs", len(c.SourceCAs))
	return b.String()
}

// LogValue logs the String summary.
func (c *Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }
