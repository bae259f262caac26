package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/acl"
)

// pkiOperatorArgs are the arguments of "pki operator".
type pkiOperatorArgs struct {
	dir       string
	ca        string
	name      string
	aclFile   string
	resources []string
	days      int
}

func pkiOperatorCmd(e *env) *cobra.Command {
	var a pkiOperatorArgs
	cmd := &cobra.Command{
		Use:   "operator DIR --ca CA-DIR --name NAME [--acl FILE] [--resource HREF ...] [--days N]",
		Short: "Create an operator's client certificate and the ACL entry that lets it update devices",
		Long: `Create an operator's client certificate (ECDSA P-256, client authentication
only) signed by the CA in CA-DIR, in DIR (created mode 0700 if needed):

  DIR/operator.pem   the certificate, common name NAME (mode 0644)
  DIR/operator.key   its private key (mode 0600)
  DIR/ca.pem         the CA certificate, to check the devices' certificates (--ca)

A certificate alone lets its holder read devices, not change them
(docs/security.md): the entry {"subject": {"cn": NAME}, "resources":
["/oc/swu", "/oic/sec/pstat"], "permission": 31} (all of CRUDN) is added to
the ACL file --acl (default DIR/acl.json; created mode 0644 if missing, an
entry for the same subject replaced). Give that file to the devices with
ocfupdated --acl. An ACL file replaces the default access rules: PSK
identities then need entries of their own ("pki psk --acl").`,
		Example: `  ocfupdate pki operator ./alice --ca ./ca --name alice --acl ./dev1/acl.json
  ocfupdate status coaps://192.0.2.10:5684 --cert alice/operator.pem --key alice/operator.key --ca alice/ca.pem`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runPKIOperator(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.ca, "ca", "", "`CA-DIR` made by \"pki ca\" (required)")
	f.StringVar(&a.name, "name", "", "the operator's `NAME`: the certificate's CN, which ACL entries name (required)")
	f.StringVar(&a.aclFile, "acl", "", "ACL `FILE` to add the operator's entry to (default DIR/acl.json)")
	f.StringSliceVar(&a.resources, "resource", defaultGrant, "`HREF` the entry grants (\"*\" for all, or a prefix ending in /*); repeatable")
	f.IntVar(&a.days, "days", defaultLeafDays, "validity in `DAYS` (at most the CA's)")
	markRequired(cmd, "ca", "name")
	return cmd
}

func runPKIOperator(_ context.Context, e *env, a *pkiOperatorArgs) error {
	if err := checkName("name", a.name); err != nil {
		return err
	}
	if err := checkDays(a.days); err != nil {
		return err
	}
	entry := acl.Entry{Subject: acl.Subject{CN: a.name}, Resources: a.resources, Permission: acl.Full}
	if _, err := acl.New([]acl.Entry{entry}); err != nil {
		return usageError{fmt.Errorf("--resource: %w", err)}
	}
	ca, err := loadCA(a.ca)
	if err != nil {
		return err
	}
	aclPath := a.aclFile
	if aclPath == "" {
		aclPath = filepath.Join(a.dir, aclFileName)
	}
	certPath, keyPath := filepath.Join(a.dir, operatorCertFile), filepath.Join(a.dir, operatorKeyFile)
	if err := refuseExisting(certPath, keyPath); err != nil {
		return err
	}
	if _, err := readACLFile(aclPath); err != nil { // before anything is written
		return err
	}
	is, err := ca.issueInto(a.dir, certPath, keyPath, &x509.Certificate{
		Subject:     pkix.Name{CommonName: a.name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, a.days)
	if err != nil {
		return err
	}
	cert, caPath, wroteCA := is.cert, is.caPath, is.wroteCA
	if err := upsertACL(aclPath, entry); err != nil {
		return err
	}

	r := &pkiResult{Subject: a.name, NotAfter: &cert.NotAfter}
	r.add(certPath, modePublic, "operator certificate (client authentication)")
	r.add(keyPath, modeSecret, "operator private key")
	if wroteCA {
		r.add(caPath, modePublic, "CA certificate: what the devices' certificates must chain to (--ca)")
	}
	r.add(aclPath, modePublic, fmt.Sprintf("ACL: cn %q may do everything on %s", a.name, strings.Join(a.resources, ", ")))
	r.Next = []string{
		command("ocfupdated", "--creds", "<DEVICE-DIR>/"+credsFileName, "--acl", aclPath),
		command("ocfupdate", "status", "coaps://<DEVICE-ADDRESS>:5684", "--cert", certPath, "--key", keyPath, "--ca", caPath),
	}
	return emitPKI(e, r, fmt.Sprintf("created operator certificate %q, valid until %s", a.name, timeText(cert.NotAfter)))
}
