package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/creds"
)

// securityFlags are how the device commands authenticate to devices over
// CoAPs: a pre-shared key (identity and a file holding the key in hex) or
// a client certificate. Without them, devices are talked to over plain
// CoAP, which a device with its secure defaults answers only for
// discovery and /oic/d.
type securityFlags struct {
	pskIdentity string
	pskKeyFile  string
	cert, key   string
	ca          string
}

func (s *securityFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.pskIdentity, "psk-identity", "", "CoAPs: the PSK `IDENTITY` the devices know")
	f.StringVar(&s.pskKeyFile, "psk-key-file", "", "CoAPs: `FILE` holding the pre-shared key in hex (mode 0600)")
	f.StringVar(&s.cert, "cert", "", "CoAPs: client certificate `FILE` (PEM), with --key")
	f.StringVar(&s.key, "key", "", "CoAPs: private key `FILE` (PEM) of --cert")
	f.StringVar(&s.ca, "ca", "", "CoAPs: trust anchors `FILE` (PEM) for the devices' certificates (default: system roots)")
}

// security builds the client's credentials, or nil for plain CoAP.
func (s *securityFlags) security() (*client.Security, error) {
	switch {
	case (s.pskIdentity == "") != (s.pskKeyFile == ""):
		return nil, usagef("--psk-identity and --psk-key-file go together")
	case (s.cert == "") != (s.key == ""):
		return nil, usagef("--cert and --key go together")
	case s.pskIdentity != "" && s.cert != "":
		return nil, usagef("give a PSK or a certificate, not both")
	case s.ca != "" && s.cert == "":
		return nil, usagef("--ca applies to certificate handshakes (--cert)")
	}
	switch {
	case s.pskIdentity != "":
		key, err := readPSK(s.pskKeyFile)
		if err != nil {
			return nil, err
		}
		return &client.Security{PSKIdentity: s.pskIdentity, PSK: key}, nil
	case s.cert != "":
		certPEM, err := os.ReadFile(s.cert)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		// The key is checked as the device checks its own: a key other
		// users can read is a key they can use.
		keyPEM, err := creds.ReadSecret(s.key)
		if err != nil {
			return nil, fmt.Errorf("client key: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", s.cert, s.key, err)
		}
		sec := &client.Security{Certificate: &pair}
		if s.ca != "" {
			pem, err := os.ReadFile(s.ca)
			if err != nil {
				return nil, fmt.Errorf("ca: %w", err)
			}
			sec.RootCAs = x509.NewCertPool()
			if !sec.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca %s: no PEM certificates in it", s.ca)
			}
		}
		return sec, nil
	}
	return nil, nil
}

// checkEndpoint validates an endpoint given on the command line: a coaps
// one needs credentials.
func (s *securityFlags) checkEndpoint(ep string) error {
	scheme, _, err := client.SplitEndpoint(ep)
	if err != nil {
		return usageError{err}
	}
	if scheme == client.SchemeCoAPS && s.pskIdentity == "" && s.cert == "" {
		return usagef("%s: coaps needs credentials: --psk-identity and --psk-key-file, or --cert and --key", ep)
	}
	return nil
}

// readPSK reads a hex key from a file that only its owner may read: a key
// on the command line would be visible to every user in the process list.
func readPSK(path string) ([]byte, error) {
	b, err := creds.ReadSecret(path)
	if err != nil {
		return nil, fmt.Errorf("psk key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		// The decoder's message would quote part of the key.
		return nil, fmt.Errorf("psk key %s: not hexadecimal", path)
	}
	if len(key) < creds.MinPSKLen || len(key) > creds.MaxPSKLen {
		return nil, fmt.Errorf("psk key %s: %d bytes, want %d to %d", path, len(key), creds.MinPSKLen, creds.MaxPSKLen)
	}
	return key, nil
}
