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
		pair, err := tls.LoadX509KeyPair(s.cert, s.key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
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
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("psk key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("psk key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("psk key %s is readable or writable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b := make([]byte, 1024)
	n, _ := f.Read(b)
	key, err := hex.DecodeString(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return nil, fmt.Errorf("psk key %s: not hex: %w", path, err)
	}
	if len(key) < 16 || len(key) > 64 {
		return nil, fmt.Errorf("psk key %s: %d bytes, want 16 to 64", path, len(key))
	}
	return key, nil
}
