package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// pkiCAArgs are the arguments of "pki ca".
type pkiCAArgs struct {
	dir  string
	name string
	days int
}

func pkiCACmd(e *env) *cobra.Command {
	var a pkiCAArgs
	cmd := &cobra.Command{
		Use:   "ca DIR [--name NAME] [--days N]",
		Short: "Create a certificate authority: DIR/ca.pem and DIR/ca.key",
		Long: `Create a self-signed certificate authority (ECDSA P-256) in DIR (created
mode 0700 if needed): the certificate DIR/ca.pem (mode 0644) and its private
key DIR/ca.key (mode 0600). The CA signs device and operator certificates
("pki device", "pki operator") and nothing else (path length 0). Devices
trust operators and operators trust devices through it.

Keep DIR, at least ca.key, offline: whoever has the key can make
certificates every device accepts. Existing files are never overwritten.`,
		Example: `  ocfupdate pki ca ./ca --name "ACME fleet CA"`,
		Args:    positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runPKICA(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.name, "name", "ocfupdate CA", "common `NAME` of the CA")
	f.IntVar(&a.days, "days", defaultCADays, "validity in `DAYS`")
	return cmd
}

func runPKICA(_ context.Context, e *env, a *pkiCAArgs) error {
	if err := checkName("name", a.name); err != nil {
		return err
	}
	if err := checkDays(a.days); err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(a.dir, caCertFile), filepath.Join(a.dir, caKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	cert, key, err := newCA(a.name, a.days, time.Now())
	if err != nil {
		return err
	}
	if err := mkdirPrivate(a.dir); err != nil {
		return err
	}
	if err := writePair(certPath, keyPath, cert, key); err != nil {
		return err
	}
	r := &pkiResult{Subject: cert.Subject.CommonName, NotAfter: &cert.NotAfter}
	r.add(certPath, modePublic, "CA certificate: the trust anchor of devices and operators")
	r.add(keyPath, modeSecret, "CA private key: keep it offline")
	r.Next = []string{
		command("ocfupdate", "pki", "device", "<DEVICE-DIR>", "--ca", a.dir, "--id", "<DEVICE-UUID>", "--host", "<DEVICE-ADDRESS>"),
		command("ocfupdate", "pki", "operator", "<OPERATOR-DIR>", "--ca", a.dir, "--name", "<OPERATOR-NAME>", "--acl", "<DEVICE-DIR>/"+aclFileName),
	}
	return emitPKI(e, r, fmt.Sprintf("created CA %q, valid until %s", cert.Subject.CommonName, timeText(cert.NotAfter)))
}
