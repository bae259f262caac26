package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/acl"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// security is what the options make of the device's security
// (docs/security.md): the credentials, the access rules, and the CoAPs
// endpoint if there is anything to authenticate peers with.
type security struct {
	creds      *creds.Credentials // nil without --creds
	authorizer ocf.Authorizer
	acl        *reloadableACL    // the --acl file; nil without one
	revocation *creds.Revocation // the --crl file; nil without one
	coapsAddr  string            // "" = no CoAPs endpoint
	dtls       ocf.DTLSConfig

	// closeSessions ends the CoAPs sessions after a reload (set once the
	// agent exists): a session keeps the authentication of its handshake,
	// so without this a revoked certificate would keep its session.
	closeSessions atomic.Pointer[func() int]
}

// newSecurity loads the credential and ACL files. The warnings of the
// development switches go to stderr as plain lines, whatever the log
// level: they must not be missed.
func newSecurity(o options, stderr io.Writer, log *slog.Logger) (*security, error) {
	s := &security{}
	if o.Creds != "" {
		c, err := creds.Load(o.Creds)
		if err != nil {
			return nil, err
		}
		s.creds = c
		log.Info("credentials loaded", "creds", c)
	}
	switch {
	case o.InsecureOpenACL:
		fmt.Fprintln(stderr, "WARNING: --insecure-open-acl: ANYBODY on the network may read and change this device's"+
			" update state, over plain CoAP, without authentication. For development only; never on a real device.")
		s.authorizer = acl.Open()
	case o.ACL != "":
		l, err := acl.Load(o.ACL)
		if err != nil {
			return nil, err
		}
		s.acl = &reloadableACL{path: o.ACL}
		s.acl.cur.Store(l)
		s.authorizer = s.acl
	default:
		var ids []string
		if s.creds != nil {
			ids = s.creds.PSKIdentities()
		}
		l, err := acl.Default(ids)
		if err != nil {
			return nil, err
		}
		s.authorizer = l
	}
	if o.AllowInsecure {
		fmt.Fprintln(stderr, "WARNING: --allow-insecure: http:// and coap:// package sources are accepted;"+
			" their content is still verified against the TUF metadata, but anybody on the path can see and withhold it."+
			" For development only.")
	}
	if o.CRL != "" {
		if err := s.loadCRL(o.CRL, stderr, log); err != nil {
			return nil, err
		}
	}
	if o.CoAPS == "" {
		return s, nil
	}
	if s.creds == nil || !s.creds.HasServerCredentials() {
		if !o.InsecureOpenACL {
			fmt.Fprintln(stderr, "WARNING: no credentials (--creds with psk or cert): the CoAPs endpoint is off,"+
				" and nobody can read or change the update state. See docs/security.md to provision the device.")
		}
		return s, nil
	}
	s.coapsAddr = o.CoAPS
	s.dtls = ocf.DTLSConfig{
		MaxSessions:            o.DTLSMaxSessions,
		MaxHandshakesPerSource: o.DTLSMaxHandshakes,
		HandshakeTimeout:       o.DTLSHandshakeTimeout.Duration,
		IdleTimeout:            o.DTLSIdleTimeout.Duration,
		Certificate:            s.creds.Certificate,
		ClientCAs:              s.creds.ClientCAs,
	}
	if len(s.creds.PSKIdentities()) > 0 {
		s.dtls.PSK = s.creds.LookupPSK
	}
	if s.revocation != nil {
		s.dtls.VerifyPeerCertificate = s.revocation.VerifyPeerCertificate
	}
	return s, nil
}

// loadCRL loads the --crl file, which needs the client CAs of the
// credential file: a CRL is accepted only when one of them signed it. An
// expired CRL is enforced all the same, with a warning on stderr that
// must not be missed (creds.Revocation says why).
func (s *security) loadCRL(path string, stderr io.Writer, log *slog.Logger) error {
	if s.creds == nil || len(s.creds.ClientCACerts) == 0 {
		return fmt.Errorf("--crl %s: needs --creds with a certificate and \"ca\": a CRL revokes client certificates of those CAs", path)
	}
	r, err := creds.NewRevocation(path, s.creds.ClientCACerts, log)
	if err != nil {
		return err
	}
	s.revocation = r
	log.Info("crl loaded", "crl", r.CRL())
	if err := r.Expired(); err != nil {
		fmt.Fprintf(stderr, "WARNING: %v. It is still enforced; publish a new one (ocfupdate pki revoke, or pki crl) and send SIGHUP.\n", err)
	}
	return nil
}

// reload re-reads the --crl and --acl files (SIGHUP). Each is swapped in
// whole if it loads and kept as it was if not; the errors say which
// failed. When a file was reloaded, every CoAPs session is closed: each
// peer must shake hands again, under the new CRL, and register its Observe
// again, under the new ACL (plain CoAP requests are decided per request).
func (s *security) reload(log *slog.Logger) error {
	var errs []error
	reloaded := false
	defer func() {
		if f := s.closeSessions.Load(); reloaded && f != nil {
			log.Info("closed the CoAPs sessions: peers shake hands again under the reloaded files", "sessions", (*f)())
		}
	}()
	if s.revocation != nil {
		if c, err := s.revocation.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("crl kept as it was: %w", err))
		} else {
			reloaded = true
			log.Info("crl reloaded", "crl", c)
			if err := s.revocation.Expired(); err != nil {
				log.Warn("the reloaded CRL has EXPIRED; it is still enforced: publish a new one", "err", err)
			}
		}
	}
	if s.acl != nil {
		if err := s.acl.reload(); err != nil {
			errs = append(errs, fmt.Errorf("acl kept as it was: %w", err))
		} else {
			reloaded = true
			log.Info("acl reloaded", "acl", s.acl.path, "entries", len(s.acl.cur.Load().Entries()))
		}
	}
	if s.revocation == nil && s.acl == nil {
		log.Info("reload: nothing to reload (neither --crl nor --acl)")
	}
	return errors.Join(errs...)
}

// reloadableACL is the --acl file's list, replaced whole on reload: a
// request is decided by one list, the old or the new.
type reloadableACL struct {
	path string
	cur  atomic.Pointer[acl.List]
}

func (r *reloadableACL) Authorize(peer ocf.Peer, href string, method codes.Code, observe bool) codes.Code {
	return r.cur.Load().Authorize(peer, href, method, observe)
}

func (r *reloadableACL) reload() error {
	l, err := acl.Load(r.path)
	if err != nil {
		return err
	}
	r.cur.Store(l)
	return nil
}
