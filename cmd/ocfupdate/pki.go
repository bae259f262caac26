package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/fsync"
)

// pkiCmd groups the quick-start credential commands.
func pkiCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Make a CA, device and operator certificates and PSKs for CoAPs; revoke certificates",
		Long: `Make the credentials devices and operators authenticate each other with over
CoAPs (DTLS): a certificate authority, device and operator certificates
(ECDSA P-256), and pre-shared keys, in the file formats ocfupdated reads
(--creds, --acl) and ocfupdate takes (--cert/--key/--ca,
--psk-identity/--psk-key-file). See docs/security.md.

  ocfupdate pki ca ca                                  # ca/ca.pem, ca/ca.key
  ocfupdate pki device dev1 --ca ca --id UUID --host 192.0.2.10
                                                       # dev1/device.pem, device.key, ca.pem, creds.json
  ocfupdate pki operator alice --ca ca --name alice --acl dev1/acl.json
                                                       # alice/operator.pem, operator.key; dev1/acl.json
  ocfupdate pki psk ops --identity bob --creds dev1/creds.json
                                                       # ops/bob.psk; bob added to dev1/creds.json
  ocfupdate pki revoke --ca ca alice/operator.pem      # ca/crl.pem: for ocfupdated --crl

Private keys are written with mode 0600 and never printed; no command
overwrites a key or a certificate. Keep the CA's key offline.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(
		pkiCACmd(e),
		pkiDeviceCmd(e),
		pkiOperatorCmd(e),
		pkiPSKCmd(e),
		pkiRevokeCmd(e),
	)
	return cmd
}

// pkiFile is a file a pki command wrote.
type pkiFile struct {
	Path string `json:"path"`
	Mode string `json:"mode"` // octal, e.g. "0600"
	What string `json:"what"`
}

// pkiResult is what a pki command prints: what it made, the files, and the
// commands to run next. It never holds a key.
type pkiResult struct {
	Subject  string     `json:"subject,omitempty"`   // CN of the certificate made
	Identity string     `json:"identity,omitempty"`  // PSK identity made
	NotAfter *time.Time `json:"not_after,omitempty"` // end of the certificate's validity
	Files    []pkiFile  `json:"files"`
	Next     []string   `json:"next"`
}

// add records a written file.
func (r *pkiResult) add(path string, mode os.FileMode, what string) {
	r.Files = append(r.Files, pkiFile{Path: path, Mode: fmt.Sprintf("%04o", uint32(mode)), What: what})
}

// emitPKI prints r: a headline, the files, and the next commands.
func emitPKI(e *env, r *pkiResult, headline string) error {
	return e.emit(r, func(w io.Writer) {
		fmt.Fprintln(w, headline)
		for _, f := range r.Files {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", f.Path, f.Mode, f.What)
		}
		if len(r.Next) > 0 {
			fmt.Fprintln(w, "next:")
			for _, n := range r.Next {
				fmt.Fprintf(w, "  %s\n", n)
			}
		}
	})
}

// Validity bounds of --days.
const (
	defaultCADays   = 3650
	defaultLeafDays = 825 // what public CAs allowed for years; renew before it runs out
	maxDays         = 36500
)

func checkDays(days int) error {
	if days < 1 || days > maxDays {
		return usagef("--days %d: want 1 to %d", days, maxDays)
	}
	return nil
}

// checkName accepts a certificate common name: 1 to 64 bytes (X.509's
// upper bound) of printable UTF-8, since it shows in logs and is what ACL
// entries ("cn") match.
func checkName(flag, name string) error {
	switch {
	case name == "" || len(name) > 64:
		return usagef("--%s %q: want 1 to 64 bytes", flag, name)
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return usagef("--%s %q: want printable characters", flag, name)
	}
	return nil
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// identityRe is what pki psk accepts as an identity: the key file is named
// after it, so it must be a plain file name; ocfupdated itself accepts any
// printable identity.
var identityRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// shellWord quotes s for the "next:" lines when a shell would split or
// expand it.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_./:@=,+-", r)))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// command joins a command line for the "next:" lines.
func command(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if strings.Contains(w, "<") { // holds a placeholder for the user to fill in
			q[i] = w
			continue
		}
		q[i] = shellWord(w)
	}
	return strings.Join(q, " ")
}

// mkdirPrivate creates dir (and parents) for files that include secrets:
// new directories are accessible to their owner only.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// refuseExisting fails when one of paths exists: pki never overwrites a
// key or a certificate, which could lock devices or operators out.
func refuseExisting(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists: pki never overwrites keys or certificates; remove it or choose another directory", p)
		} else if !os.IsNotExist(err) {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// writeNew writes data to path with exactly mode, failing if path exists.
// The file appears whole or not at all (written aside, then linked).
func writeNew(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode, false)
}

// writeReplace writes data to path with exactly mode, atomically replacing
// what was there.
func writeReplace(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode, true)
}

func writeAtomic(path string, data []byte, mode os.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // mode 0600 from the start
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		_ = os.Remove(tmp.Name()) // after Link or Rename, or on failure
	}()
	if err := writeSynced(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path) // fails if path exists, unlike Rename
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_ = fsync.Dir(dir) // the new name survives a crash
	return nil
}

// writeSynced writes data to f, sets mode exactly (the umask does not
// apply to Chmod), flushes and closes f.
func writeSynced(f *os.File, data []byte, mode os.FileMode) error {
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return fsync.Write(f, data)
}
