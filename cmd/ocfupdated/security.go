package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/ocfupdate/ocfupdate/internal/acl"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// security is what the options make of the device's security
// (docs/security.md): the credentials, the access rules, and the CoAPs
// endpoint if there is anything to authenticate peers with.
type security struct {
	creds      *creds.Credentials // nil without --creds
	authorizer *acl.List
	coapsAddr  string // "" = no CoAPs endpoint
	dtls       ocf.DTLSConfig
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
		s.authorizer = l
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
	return s, nil
}
