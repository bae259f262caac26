package creds

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"
)

// Certificate revocation: the device refuses client certificates whose
// serial a CRL of their issuing CA lists. The CRL file is separate from the
// credential file (ocfupdated --crl): it holds no secret, is the same for a
// whole fleet, and changes whenever an operator loses a laptop, while the
// credential file is per device and holds keys.

// Sentinel errors of CRL checks.
var (
	// ErrRevoked is wrapped by the error of a client certificate a CRL
	// lists (a *RevokedError).
	ErrRevoked = errors.New("certificate revoked")

	// ErrCRLExpired is wrapped by CRL.Expired when a CRL's nextUpdate has
	// passed. The CRL is still enforced.
	ErrCRLExpired = errors.New("CRL expired")
)

// Revocation reasons of RFC 5280 section 5.3.1, by the names it gives
// them. certificateHold (6) and removeFromCRL (8) are left out: nothing
// here ever takes a certificate off a CRL again.
var reasonNames = map[int]string{
	0:  "unspecified",
	1:  "keyCompromise",
	2:  "cACompromise",
	3:  "affiliationChanged",
	4:  "superseded",
	5:  "cessationOfOperation",
	9:  "privilegeWithdrawn",
	10: "aACompromise",
}

// ReasonName is the RFC 5280 name of a CRL reason code ("reason N" for a
// code it does not know).
func ReasonName(code int) string {
	if n, ok := reasonNames[code]; ok {
		return n
	}
	if code == 6 {
		return "certificateHold"
	}
	return fmt.Sprintf("reason %d", code)
}

// ParseReason returns the code of an RFC 5280 reason name (case does not
// matter), for the reasons a revocation may give.
func ParseReason(name string) (int, error) {
	for code, n := range reasonNames {
		if strings.EqualFold(n, name) {
			return code, nil
		}
	}
	return 0, fmt.Errorf("revocation reason %q: want one of %s", name, strings.Join(ReasonNames(), ", "))
}

// ReasonNames lists the names ParseReason takes, by code.
func ReasonNames() []string {
	var out []string
	for code := 0; code <= 10; code++ {
		if n, ok := reasonNames[code]; ok {
			out = append(out, n)
		}
	}
	return out
}

// RevokedError is the error of a certificate a CRL lists. It names the
// certificate by serial and subject, which is all a log needs to find the
// operator it was issued to.
type RevokedError struct {
	Serial    *big.Int
	Subject   string // the revoked certificate's subject (RFC 2253)
	Issuer    string // the CA whose CRL lists it
	RevokedAt time.Time
	Reason    int // RFC 5280 reason code
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("certificate serial %s (subject %q) revoked by %q on %s (%s)",
		SerialText(e.Serial), e.Subject, e.Issuer, e.RevokedAt.UTC().Format(time.RFC3339), ReasonName(e.Reason))
}

// Is makes errors.Is(err, ErrRevoked) true.
func (e *RevokedError) Is(target error) bool { return target == ErrRevoked }

// SerialText formats a serial number the way openssl and the pki commands
// print it: upper-case hex, colon-separated bytes.
func SerialText(n *big.Int) string {
	if n == nil {
		return "<nil>"
	}
	b := n.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	var sb strings.Builder
	if n.Sign() < 0 {
		sb.WriteByte('-')
	}
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

// CRL is a loaded CRL file: one X.509 CRL per CA at most, each signed by
// one of the trust anchors it was loaded against. It is immutable.
type CRL struct {
	// Path is the file it was read from.
	Path string

	lists []*crlList
}

// crlList is one CRL of the file.
type crlList struct {
	issuer     *x509.Certificate
	number     *big.Int // nil when the CRL has none
	thisUpdate time.Time
	nextUpdate time.Time // zero when the CRL has none
	revoked    map[string]x509.RevocationListEntry
}

// LoadCRL reads the PEM CRL file at path (it must not be writable by group
// or others: it decides whom the device trusts) and checks every CRL in it
// against cas, the trust anchors of client certificates: a CRL that none
// of them signed is an error, as is a file without a CRL.
func LoadCRL(path string, cas []*x509.Certificate) (*CRL, error) {
	b, err := ReadProtected(path)
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	c, err := ParseCRL(path, b, cas)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseCRL is LoadCRL on the file's content b; path names it in errors.
func ParseCRL(path string, b []byte, cas []*x509.Certificate) (*CRL, error) {
	if len(cas) == 0 {
		return nil, fmt.Errorf("crl %s: no CA to check it against: the credential file needs a \"ca\"", path)
	}
	c := &CRL{Path: path}
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			return nil, fmt.Errorf("crl %s: PEM block %d is %q, want \"X509 CRL\"", path, n, blk.Type)
		}
		l, err := parseList(blk.Bytes, cas)
		if err != nil {
			return nil, fmt.Errorf("crl %s: CRL %d: %w", path, n, err)
		}
		for _, o := range c.lists {
			if o.issuer.Equal(l.issuer) {
				return nil, fmt.Errorf("crl %s: CRL %d: a second CRL of %q: keep the newest only", path, n, l.issuer.Subject)
			}
		}
		c.lists = append(c.lists, l)
	}
	if len(c.lists) == 0 {
		return nil, fmt.Errorf("crl %s: no PEM \"X509 CRL\" block in it", path)
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		return nil, fmt.Errorf("crl %s: data that is not PEM after CRL %d", path, len(c.lists))
	}
	return c, nil
}

// parseList parses one DER CRL and finds the CA of cas that signed it.
func parseList(der []byte, cas []*x509.Certificate) (*crlList, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	var issuer *x509.Certificate
	for _, ca := range cas {
		if rl.CheckSignatureFrom(ca) == nil {
			issuer = ca
			break
		}
	}
	if issuer == nil {
		return nil, fmt.Errorf("issued by %q, signed by none of the configured CAs", rl.Issuer)
	}
	l := &crlList{
		issuer: issuer, number: rl.Number,
		thisUpdate: rl.ThisUpdate, nextUpdate: rl.NextUpdate,
		revoked: make(map[string]x509.RevocationListEntry, len(rl.RevokedCertificateEntries)),
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber == nil {
			continue
		}
		l.revoked[e.SerialNumber.Text(16)] = e
	}
	return l, nil
}

// Check returns a *RevokedError when a certificate of one of chains (as
// verified against the trust anchors) is listed by the CRL of the CA that
// issued it, and nil otherwise. Only certificates issued directly by a
// trust anchor can be revoked: the file holds CRLs of trust anchors only.
func (c *CRL) Check(chains [][]*x509.Certificate) error {
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			for _, l := range c.lists {
				if !l.issuer.Equal(issuer) || cert.SerialNumber == nil {
					continue
				}
				if e, ok := l.revoked[cert.SerialNumber.Text(16)]; ok {
					return &RevokedError{
						Serial: cert.SerialNumber, Subject: cert.Subject.String(), Issuer: issuer.Subject.String(),
						RevokedAt: e.RevocationTime, Reason: e.ReasonCode,
					}
				}
			}
		}
	}
	return nil
}

// Expired returns an error wrapping ErrCRLExpired when the nextUpdate of a
// CRL lies before now, naming each such CRL; nil otherwise.
func (c *CRL) Expired(now time.Time) error {
	var errs []error
	for _, l := range c.lists {
		if !l.nextUpdate.IsZero() && now.After(l.nextUpdate) {
			errs = append(errs, fmt.Errorf("%w: the CRL of %q (number %s) expired on %s", ErrCRLExpired,
				l.issuer.Subject, numberText(l.number), l.nextUpdate.UTC().Format(time.RFC3339)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("crl %s: %w", c.Path, err)
	}
	return nil
}

// Supersedes refuses a new CRL file that would undo revocations of old: a
// CRL with a lower CRL number than the one of the same CA in old, or no
// CRL at all for a CA old has one of. Either is what replaying an old
// file looks like.
func (c *CRL) Supersedes(old *CRL) error {
	for _, o := range old.lists {
		var n *crlList
		for _, l := range c.lists {
			if l.issuer.Equal(o.issuer) {
				n = l
			}
		}
		switch {
		case n == nil:
			return fmt.Errorf("crl %s: has no CRL of %q, which the CRL in force has", c.Path, o.issuer.Subject)
		case o.number != nil && n.number != nil && n.number.Cmp(o.number) < 0:
			return fmt.Errorf("crl %s: the CRL of %q has number %s, older than the %s in force",
				c.Path, o.issuer.Subject, numberText(n.number), numberText(o.number))
		}
	}
	return nil
}

// Serials counts the serial numbers the CRLs list.
func (c *CRL) Serials() int {
	n := 0
	for _, l := range c.lists {
		n += len(l.revoked)
	}
	return n
}

// String summarises the file: its CRLs, their numbers and sizes.
func (c *CRL) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crl %s:", c.Path)
	for i, l := range c.lists {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %q number %s, %d revoked", l.issuer.Subject.CommonName, numberText(l.number), len(l.revoked))
		if !l.nextUpdate.IsZero() {
			fmt.Fprintf(&b, ", next update %s", l.nextUpdate.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// LogValue logs the String summary.
func (c *CRL) LogValue() slog.Value { return slog.StringValue(c.String()) }

func numberText(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return n.String()
}
