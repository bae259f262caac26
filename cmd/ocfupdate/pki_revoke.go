package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/creds"
)

// defaultCRLDays is how long a CRL stays current (its nextUpdate): short
// enough that a device notices a CRL nobody renews, long enough for a
// monthly routine. Devices keep enforcing a CRL past it, with warnings.
const defaultCRLDays = 30

// pkiRevokeArgs are the arguments of "pki revoke".
type pkiRevokeArgs struct {
	ca     string
	certs  []string
	reason string
	days   int
	list   bool
	renew  bool
}

func pkiRevokeCmd(e *env) *cobra.Command {
	var a pkiRevokeArgs
	cmd := &cobra.Command{
		Use:   "revoke --ca CA-DIR CERT.pem ... [--reason REASON] [--days N] | --ca CA-DIR --list | --ca CA-DIR --renew [--days N]",
		Short: "Revoke certificates the CA issued: CA-DIR/crl.pem, for the devices' ocfupdated --crl",
		Long: `Add the serial numbers of the certificates CERT.pem (operator or device
certificates the CA in CA-DIR issued) to the CA's certificate revocation
list, CA-DIR/crl.pem (mode 0644), and sign it again with the CA's key: CRL
number one higher, issued now, next update in --days (default 30). Devices
given the file (ocfupdated --crl) refuse those certificates' handshakes;
SIGHUP makes a running ocfupdated read it again.

Revoking a certificate that is already revoked changes nothing (exit 0). A
certificate another CA issued is refused (exit 1) and nothing is written.
--reason is one of the RFC 5280 reasons (default unspecified).

--list prints the serials the CRL revokes, with when and why (CA-DIR/ca.pem
suffices; the key is not read). --renew signs the same list again with a
new next update: do it before the next update passes, else devices warn
on every start and every refusal (they keep enforcing it).`,
		Example: `  ocfupdate pki revoke --ca ./ca ./alice/operator.pem --reason keyCompromise
  ocfupdate pki revoke --ca ./ca --list
  ocfupdate pki revoke --ca ./ca --renew`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.certs = pos
			return runPKIRevoke(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.ca, "ca", "", "`CA-DIR` made by \"pki ca\" (required)")
	f.StringVar(&a.reason, "reason", "unspecified", "RFC 5280 `REASON`: keyCompromise, superseded, affiliationChanged, cessationOfOperation, privilegeWithdrawn, ...")
	f.IntVar(&a.days, "days", defaultCRLDays, "`DAYS` until the CRL's next update")
	f.BoolVar(&a.list, "list", false, "print the revoked serials, write nothing")
	f.BoolVar(&a.renew, "renew", false, "sign the CRL again with a new next update, revoking nothing new")
	markRequired(cmd, "ca")
	return cmd
}

// revokedSerial is one entry of the CRL as printed.
type revokedSerial struct {
	Serial    string    `json:"serial"`
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason"`
}

// crlResult is what pki revoke prints: the CRL as it now is, the
// certificates of this run, and the file written if any.
type crlResult struct {
	CRL        string          `json:"crl"`
	Issuer     string          `json:"issuer"`
	Number     string          `json:"number,omitempty"` // "" when there is no CRL yet
	ThisUpdate *time.Time      `json:"this_update,omitempty"`
	NextUpdate *time.Time      `json:"next_update,omitempty"`
	Revoked    []revokedSerial `json:"revoked"`
	Added      []string        `json:"added,omitempty"`           // serials revoked by this run
	Already    []string        `json:"already_revoked,omitempty"` // serials given that were revoked before
	Files      []pkiFile       `json:"files,omitempty"`
	Next       []string        `json:"next,omitempty"`
}

func runPKIRevoke(_ context.Context, e *env, a *pkiRevokeArgs) error {
	reason, err := creds.ParseReason(a.reason)
	switch {
	case err != nil:
		return usageError{fmt.Errorf("--reason: %w", err)}
	case a.days < 1 || a.days > maxDays:
		return usagef("--days %d: want 1 to %d", a.days, maxDays)
	case a.list && (a.renew || len(a.certs) > 0):
		return usagef("--list takes no certificate and no --renew")
	case a.renew && len(a.certs) > 0:
		return usagef("--renew revokes nothing: give certificates or --renew, not both")
	case !a.list && !a.renew && len(a.certs) == 0:
		return usagef("missing CERT.pem: give the certificates to revoke, or --list or --renew")
	}
	crlPath := filepath.Join(a.ca, crlFileName)
	if a.list {
		caCert, err := loadCACert(a.ca)
		if err != nil {
			return err
		}
		old, err := readCRL(crlPath, caCert)
		if err != nil {
			return err
		}
		r := describeCRL(crlPath, caCert, old)
		return emitCRL(e, r, crlHeadline(crlPath, r))
	}

	ca, err := loadCA(a.ca)
	if err != nil {
		return err
	}
	// Every check before anything is written.
	var certs []*x509.Certificate
	for _, p := range a.certs {
		c, err := readIssuedCert(p, ca)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	old, err := readCRL(crlPath, ca.cert)
	if err != nil {
		return err
	}

	now := time.Now()
	var entries []x509.RevocationListEntry
	listed := map[string]bool{}
	if old != nil {
		for _, en := range old.RevokedCertificateEntries {
			// Only the fields CreateRevocationList reads: the parsed
			// entry's Raw and Extensions would be copied as they are.
			entries = append(entries, x509.RevocationListEntry{
				SerialNumber: en.SerialNumber, RevocationTime: en.RevocationTime, ReasonCode: en.ReasonCode,
			})
			listed[en.SerialNumber.Text(16)] = true
		}
	}
	var added, already []string
	var subjects []string
	for _, c := range certs {
		serial := creds.SerialText(c.SerialNumber)
		if listed[c.SerialNumber.Text(16)] {
			already = append(already, serial)
			continue
		}
		listed[c.SerialNumber.Text(16)] = true
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now, ReasonCode: reason})
		added = append(added, serial)
		subjects = append(subjects, fmt.Sprintf("%q (serial %s)", c.Subject.CommonName, serial))
	}
	if len(added) == 0 && !a.renew {
		r := describeCRL(crlPath, ca.cert, old)
		r.Already = already
		return emitCRL(e, r, fmt.Sprintf("already revoked: %s; %s left unchanged", strings.Join(already, ", "), crlPath))
	}

	number := big.NewInt(1)
	if old != nil && old.Number != nil {
		number.Add(old.Number, big.NewInt(1))
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.AddDate(0, 0, a.days),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		return fmt.Errorf("sign the CRL: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	// What is written must load as ocfupdated loads it.
	if _, err := creds.ParseCRL(crlPath, data, []*x509.Certificate{ca.cert}); err != nil {
		return fmt.Errorf("the new CRL would not load, nothing written: %w", err)
	}
	if err := writeReplace(crlPath, data, modePublic); err != nil {
		return err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("read back the CRL: %w", err)
	}
	r := describeCRL(crlPath, ca.cert, rl)
	r.Added, r.Already = added, already
	r.Files = []pkiFile{{Path: crlPath, Mode: fmt.Sprintf("%04o", uint32(modePublic)),
		What: fmt.Sprintf("CRL number %s: %d revoked serials, next update %s", number, len(entries), timeText(rl.NextUpdate))}}
	r.Next = []string{
		command("ocfupdated", "--creds", "<DEVICE-DIR>/"+credsFileName, "--crl", "<DEVICE-DIR>/"+crlFileName) + "   # after copying " + crlPath + " to each device",
		command("kill", "-HUP", "<OCFUPDATED-PID>") + "   # a running ocfupdated reads the CRL again",
		command("ocfupdate", "pki", "revoke", "--ca", a.ca, "--renew") + "   # before " + timeText(rl.NextUpdate),
	}
	headline := "revoked " + strings.Join(subjects, ", ")
	if len(added) == 0 {
		headline = "renewed the CRL"
	}
	return emitCRL(e, r, headline)
}

// readIssuedCert reads the first PEM certificate of path and checks that
// the CA issued it: the CA's CRL can only revoke its own certificates.
func readIssuedCert(path string, ca *authority) (*x509.Certificate, error) {
	b, err := readFileLimited(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", path)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if c.CheckSignatureFrom(ca.cert) != nil {
			return nil, fmt.Errorf("%s (%q, issued by %q) was not issued by the CA in %s: its CRL cannot revoke it",
				path, c.Subject.CommonName, c.Issuer.CommonName, ca.dir)
		}
		return c, nil
	}
}

// maxCertFileSize bounds a certificate file: a chain is a few kilobytes.
const maxCertFileSize = 1 << 20

// readFileLimited reads a certificate given on the command line, which
// is public: only its size is bounded.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCertFileSize))
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return b, nil
}

// readCRL reads the CA's CRL, nil if there is none yet. One that does not
// verify against the CA is an error: rewriting it would silently drop
// what it revokes.
func readCRL(path string, caCert *x509.Certificate) (*x509.RevocationList, error) {
	b, err := creds.ReadProtected(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	if _, err := creds.ParseCRL(path, b, []*x509.Certificate{caCert}); err != nil {
		return nil, fmt.Errorf("fix or remove the existing CRL first: %w", err)
	}
	blk, _ := pem.Decode(b) // ParseCRL found exactly this one
	rl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", path, err)
	}
	return rl, nil
}

// describeCRL is the printable form of rl (nil: no CRL yet).
func describeCRL(path string, caCert *x509.Certificate, rl *x509.RevocationList) *crlResult {
	r := &crlResult{CRL: path, Issuer: caCert.Subject.CommonName, Revoked: []revokedSerial{}}
	if rl == nil {
		return r
	}
	if rl.Number != nil {
		r.Number = rl.Number.String()
	}
	this, next := rl.ThisUpdate, rl.NextUpdate
	r.ThisUpdate = &this
	if !next.IsZero() {
		r.NextUpdate = &next
	}
	for _, en := range rl.RevokedCertificateEntries {
		r.Revoked = append(r.Revoked, revokedSerial{
			Serial: creds.SerialText(en.SerialNumber), RevokedAt: en.RevocationTime, Reason: creds.ReasonName(en.ReasonCode),
		})
	}
	return r
}

func crlHeadline(path string, r *crlResult) string {
	switch {
	case r.ThisUpdate == nil:
		return fmt.Sprintf("no CRL yet (%s): nothing revoked", path)
	case r.NextUpdate == nil:
		return fmt.Sprintf("%s, number %s, no next update", path, r.Number)
	case time.Now().After(*r.NextUpdate):
		return fmt.Sprintf("%s, number %s: EXPIRED on %s (devices still enforce it, with warnings): renew it with --renew",
			path, r.Number, timeText(*r.NextUpdate))
	}
	return fmt.Sprintf("%s, number %s, next update %s", path, r.Number, timeText(*r.NextUpdate))
}

// emitCRL prints r: a headline, the revoked serials, the file written and
// the next commands.
func emitCRL(e *env, r *crlResult, headline string) error {
	return e.emit(r, func(w io.Writer) {
		fmt.Fprintln(w, headline)
		for _, f := range r.Files {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", f.Path, f.Mode, f.What)
		}
		if len(r.Revoked) > 0 {
			fmt.Fprintln(w, "revoked:")
			for _, s := range r.Revoked {
				fmt.Fprintf(w, "  %s\t%s\t%s\n", s.Serial, timeText(s.RevokedAt), s.Reason)
			}
		}
		if len(r.Next) > 0 {
			fmt.Fprintln(w, "next:")
			for _, n := range r.Next {
				fmt.Fprintf(w, "  %s\n", n)
			}
		}
	})
}
