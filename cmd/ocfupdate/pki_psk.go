package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/acl"
)

// pskBytes is the size of the keys pki psk makes: the 128 bits of the
// AES-128 suites.
const pskBytes = 16

// printableAlphabet makes --printable keys: base64url characters, which
// any tool that takes a key as text accepts. 24 of them carry 144 bits.
const (
	printableAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	printableLen      = 24
)

// pkiPSKArgs are the arguments of "pki psk".
type pkiPSKArgs struct {
	dir       string
	identity  string
	credsFile []string
	aclFile   string
	resources []string
	printable bool
}

func pkiPSKCmd(e *env) *cobra.Command {
	var a pkiPSKArgs
	cmd := &cobra.Command{
		Use:   "psk DIR --identity ID [--creds FILE ...] [--acl FILE [--resource HREF ...]]",
		Short: "Create a pre-shared key: the operator's key file and the devices' credential entry",
		Long: `Create a random 16-byte pre-shared key for the PSK identity ID and hand it to
both sides:

  DIR/ID.psk   the key in hex, mode 0600: the operator's --psk-key-file
  --creds FILE the devices' credential file(s) (default DIR/creds.json): the
               entry {"identity": ID, "key_hex": ...} is added; a file that
               does not exist is created (mode 0600); repeat --creds to give
               several devices the same key

A device's default access rules give every PSK identity of its credential
file full access. With an ACL file (ocfupdated --acl) they do not: --acl FILE
adds {"subject": {"psk": ID}, "resources": ["/oc/swu", "/oic/sec/pstat"],
"permission": 31} to it.

--printable makes a key of 24 letters, digits, - and _ (144 bits) instead of
16 random bytes, for tools that take the key as text, such as libcoap's
coap-client -k: -k "$(xxd -r -p DIR/ID.psk)".

The key is never printed. An identity already in a credential file is an
error (its holder would be locked out): remove the entry to change a key.`,
		Example: `  ocfupdate pki psk ./ops --identity bob --creds ./dev1/creds.json
  ocfupdate status coaps://192.0.2.10:5684 --psk-identity bob --psk-key-file ops/bob.psk`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runPKIPSK(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.identity, "identity", "", "the PSK `ID` the operator presents (letters, digits, . _ : @ -; required)")
	f.StringSliceVar(&a.credsFile, "creds", nil, "device credential `FILE` to add the key to; repeatable (default DIR/creds.json)")
	f.StringVar(&a.aclFile, "acl", "", "also add an entry granting ID the --resource hrefs to this ACL `FILE`")
	f.StringSliceVar(&a.resources, "resource", defaultGrant, "with --acl: `HREF` the entry grants; repeatable")
	f.BoolVar(&a.printable, "printable", false, "a key of printable characters, for tools that take keys as text (libcoap's -k)")
	markRequired(cmd, "identity")
	return cmd
}

func runPKIPSK(_ context.Context, e *env, a *pkiPSKArgs) error {
	if !identityRe.MatchString(a.identity) {
		return usagef("--identity %q: want 1 to 128 letters, digits and . _ : @ -, starting with a letter or digit (the key file is named after it)", a.identity)
	}
	entry := acl.Entry{Subject: acl.Subject{PSK: a.identity}, Resources: a.resources, Permission: acl.Full}
	if _, err := acl.New([]acl.Entry{entry}); err != nil {
		return usageError{fmt.Errorf("--resource: %w", err)}
	}
	credsPaths := a.credsFile
	if len(credsPaths) == 0 {
		credsPaths = []string{filepath.Join(a.dir, credsFileName)}
	}
	keyPath := filepath.Join(a.dir, a.identity+".psk")

	// Everything is checked before anything is written.
	if err := refuseExisting(keyPath); err != nil {
		return err
	}
	for _, p := range credsPaths {
		f, err := readCredsFile(p)
		if err != nil {
			return err
		}
		for _, k := range f.PSK {
			if k.Identity == a.identity {
				return fmt.Errorf("%s already has PSK identity %q: remove its entry first to give it a new key", p, a.identity)
			}
		}
	}
	if a.aclFile != "" {
		if _, err := readACLFile(a.aclFile); err != nil {
			return err
		}
	}

	key, err := newPSK(a.printable)
	if err != nil {
		return err
	}
	r := &pkiResult{Identity: a.identity}
	if err := provisionPSK(keyPath, credsPaths, a.identity, key); err != nil {
		return err
	}
	r.add(keyPath, modeSecret, "the key in hex: the operator's --psk-key-file")
	for _, p := range credsPaths {
		r.add(p, modeSecret, fmt.Sprintf("credential file: PSK identity %q added", a.identity))
	}
	if a.aclFile != "" {
		if err := upsertACL(a.aclFile, entry); err != nil {
			return err
		}
		r.add(a.aclFile, modePublic, fmt.Sprintf("ACL: psk %q may do everything on %s", a.identity, strings.Join(a.resources, ", ")))
	}
	next := []string{"ocfupdated", "--creds", credsPaths[0]}
	if a.aclFile != "" {
		next = append(next, "--acl", a.aclFile)
	}
	r.Next = []string{
		command(next...),
		command("ocfupdate", "status", "coaps://<DEVICE-ADDRESS>:5684", "--psk-identity", a.identity, "--psk-key-file", keyPath),
	}
	return emitPKI(e, r, fmt.Sprintf("created a pre-shared key for identity %q", a.identity))
}

// newPSK makes a random key: 16 bytes, or 24 printable characters.
func newPSK(printable bool) ([]byte, error) {
	n := pskBytes
	if printable {
		n = printableLen
	}
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("psk: %w", err)
	}
	if printable {
		for i, b := range key {
			key[i] = printableAlphabet[b&63] // 64 characters: 6 uniform bits each
		}
	}
	return key, nil
}

// provisionPSK gives key to both sides: each device credential file gets
// the identity's entry, then the operator's key file (hex, mode 0600) is
// written. The demo provisions its fleet with it too.
func provisionPSK(keyPath string, credsPaths []string, identity string, key []byte) error {
	for _, p := range credsPaths {
		if err := addPSK(p, identity, key); err != nil {
			return err
		}
	}
	if err := mkdirPrivate(filepath.Dir(keyPath)); err != nil {
		return err
	}
	return writeNew(keyPath, []byte(hex.EncodeToString(key)+"\n"), modeSecret)
}
