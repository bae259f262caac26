package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// pkiDeviceArgs are the arguments of "pki device".
type pkiDeviceArgs struct {
	dir   string
	ca    string
	id    string
	name  string
	hosts []string
	days  int
}

// defaultDeviceHosts are the subject alternative names of a device
// certificate without --host: loopback, for trying things on one machine.
var defaultDeviceHosts = []string{"127.0.0.1", "::1", "localhost"}

func pkiDeviceCmd(e *env) *cobra.Command {
	var a pkiDeviceArgs
	cmd := &cobra.Command{
		Use:   "device DIR --ca CA-DIR (--id UUID | --name NAME) [--host HOST ...] [--days N]",
		Short: "Create a device's certificate and its credential file for ocfupdated --creds",
		Long: `Create a device certificate signed by the CA in CA-DIR, and the credential
file ocfupdated reads (--creds), in DIR (created mode 0700 if needed):

  DIR/device.pem   the device's certificate (mode 0644)
  DIR/device.key   its private key, ECDSA P-256 (mode 0600)
  DIR/ca.pem       the CA certificate: the trust anchor for operators' certificates
  DIR/creds.json   {"cert": "device.pem", "key": "device.key", "ca": ["ca.pem"]} (mode 0600)

The certificate's common name is "uuid:UUID" with --id (as OCF names
devices; ACL entries can then name the device by "uuid") or NAME with --name.
Its subject alternative names are the --host values, IP addresses or DNS
names, which is how operators reach the device: clients check the name they
dialled against them. Default: 127.0.0.1, ::1, localhost. It is good for
server and client authentication (the device also presents it to coaps
package servers).

An existing DIR/creds.json (for instance with PSKs from "pki psk") is kept
and completed, unless it already names a certificate. Copy DIR to the device
with its modes (the daemon refuses a key or credential file others can
read) and start it with: ocfupdated --creds DIR/creds.json`,
		Example: `  ocfupdate pki device ./dev1 --ca ./ca --id 8f0c3a52-8d7e-4bb1-9d1a-0c3f1e2d4b5a --host 192.0.2.10 --host boiler-17.lan`,
		Args:    positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runPKIDevice(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.ca, "ca", "", "`CA-DIR` made by \"pki ca\" (required)")
	f.StringVar(&a.id, "id", "", "device `UUID`: the certificate's CN is uuid:UUID")
	f.StringVar(&a.name, "name", "", "the certificate's CN, instead of --id")
	f.StringSliceVar(&a.hosts, "host", nil, "IP address or DNS name (`HOST`) operators reach the device at; repeatable (default 127.0.0.1, ::1, localhost)")
	f.IntVar(&a.days, "days", defaultLeafDays, "validity in `DAYS` (at most the CA's)")
	markRequired(cmd, "ca")
	return cmd
}

func (a *pkiDeviceArgs) commonName() (string, error) {
	switch {
	case (a.id == "") == (a.name == ""):
		return "", usagef("give exactly one of --id and --name")
	case a.id != "":
		if !uuidRe.MatchString(a.id) {
			return "", usagef("--id %q is not a UUID (8-4-4-4-12 hex digits)", a.id)
		}
		return "uuid:" + strings.ToLower(a.id), nil
	}
	return a.name, checkName("name", a.name)
}

// sans splits the hosts into IP addresses and DNS names.
func sans(hosts []string) (ips []net.IP, dns []string, err error) {
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h == "" || len(h) > 253 || strings.ContainsAny(h, " \t/:@%[]") {
			return nil, nil, usagef("--host %q: want an IP address or a DNS name", h)
		}
		if !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return ips, dns, nil
}

func runPKIDevice(_ context.Context, e *env, a *pkiDeviceArgs) error {
	cn, err := a.commonName()
	if err != nil {
		return err
	}
	if err := checkDays(a.days); err != nil {
		return err
	}
	hosts := a.hosts
	if len(hosts) == 0 {
		hosts = defaultDeviceHosts
	}
	ips, dns, err := sans(hosts)
	if err != nil {
		return err
	}
	ca, err := loadCA(a.ca)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(a.dir, deviceCertFile), filepath.Join(a.dir, deviceKeyFile)
	credsPath := filepath.Join(a.dir, credsFileName)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	cf, err := readCredsFile(credsPath)
	if err != nil {
		return err
	}
	if cf.Cert != "" {
		return fmt.Errorf("%s already names a certificate (%s); remove \"cert\", \"key\" and \"ca\" from it first", credsPath, cf.Cert)
	}
	is, err := ca.issueInto(a.dir, certPath, keyPath, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: ips,
		DNSNames:    dns,
	}, a.days)
	if err != nil {
		return err
	}
	cert, caPath, wroteCA := is.cert, is.caPath, is.wroteCA
	cf.Cert, cf.Key = deviceCertFile, deviceKeyFile
	if !slices.Contains(cf.CA, caCertFile) {
		cf.CA = append(cf.CA, caCertFile)
	}
	if err := writeCredsFile(credsPath, cf); err != nil {
		return err
	}

	r := &pkiResult{Subject: cn, NotAfter: &cert.NotAfter}
	r.add(certPath, modePublic, "device certificate, for "+strings.Join(hosts, ", "))
	r.add(keyPath, modeSecret, "device private key")
	if wroteCA {
		r.add(caPath, modePublic, "CA certificate: the device trusts operators' certificates it signed")
	}
	r.add(credsPath, modeSecret, "credential file for ocfupdated --creds")
	r.Next = []string{
		command("ocfupdated", "--creds", credsPath),
		command("ocfupdate", "pki", "operator", "<OPERATOR-DIR>", "--ca", a.ca, "--name", "<OPERATOR-NAME>", "--acl", filepath.Join(a.dir, aclFileName)),
		command("ocfupdate", "pki", "psk", "<OPERATOR-DIR>", "--identity", "<IDENTITY>", "--creds", credsPath),
	}
	return emitPKI(e, r, fmt.Sprintf("created device certificate %q, valid until %s", cn, timeText(cert.NotAfter)))
}
