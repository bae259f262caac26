package creds

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Revocation is the CRL a device enforces on client certificates, read
// from a file and replaced as a whole by Reload. Its VerifyPeerCertificate
// goes into the DTLS handshake (ocf.DTLSConfig); it is safe for concurrent
// use.
//
// An expired CRL (nextUpdate passed) is still enforced, with a warning at
// load and on every refusal: ignoring it would let every revoked
// certificate back in (fail open), refusing every certificate would lock
// every operator out (fail closed) when all that is late is the next CRL.
type Revocation struct {
	path string
	cas  []*x509.Certificate
	log  *slog.Logger
	now  func() time.Time

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[CRL]
}

// NewRevocation loads the CRL file at path, checked against cas (the
// trust anchors of client certificates, Credentials.ClientCACerts).
// Refusals and reloads are logged to log.
func NewRevocation(path string, cas []*x509.Certificate, log *slog.Logger) (*Revocation, error) {
	r := &Revocation{path: path, cas: cas, log: log, now: time.Now}
	c, err := LoadCRL(path, cas)
	if err != nil {
		return nil, err
	}
	r.cur.Store(c)
	return r, nil
}

// CRL returns the CRL in force.
func (r *Revocation) CRL() *CRL { return r.cur.Load() }

// Expired is CRL().Expired at the current time: an error wrapping
// ErrCRLExpired when the CRL in force is past its nextUpdate.
func (r *Revocation) Expired() error { return r.CRL().Expired(r.now()) }

// Reload reads the file again and puts it in force if it loads, is signed
// by a configured CA and undoes no revocation of the CRL in force (see
// CRL.Supersedes). Otherwise the CRL in force stays and the error says
// why. Handshakes in progress finish with whichever CRL they read.
func (r *Revocation) Reload() (*CRL, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := LoadCRL(r.path, r.cas)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if err := c.Supersedes(r.cur.Load()); err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	r.cur.Store(c)
	return c, nil
}

// VerifyPeerCertificate refuses a client whose verified chain holds a
// revoked certificate, logging the refusal (serial and subject, at info;
// at warn when the CRL has expired). Its signature is crypto/tls's and
// pion/dtls's hook, which call it after the chain verified.
func (r *Revocation) VerifyPeerCertificate(_ [][]byte, chains [][]*x509.Certificate) error {
	c := r.cur.Load()
	err := c.Check(chains)
	var re *RevokedError
	if !errors.As(err, &re) {
		return err
	}
	attrs := []any{"serial", SerialText(re.Serial), "subject", re.Subject, "reason", ReasonName(re.Reason)}
	if exp := c.Expired(r.now()); exp != nil {
		r.log.Warn("client certificate refused: revoked; the CRL has EXPIRED and is still enforced: publish a new one",
			append(attrs, "crl", exp.Error())...)
	} else {
		r.log.Info("client certificate refused: revoked", attrs...)
	}
	return err
}
