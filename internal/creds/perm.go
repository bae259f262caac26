package creds

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrInsecurePermissions is wrapped by every error about a file whose mode
// lets other users read a secret or change what the device trusts.
var ErrInsecurePermissions = errors.New("insecure file permissions")

// maxFileSize bounds every credential, certificate and access control file.
const maxFileSize = 1 << 20

// ReadSecret reads a file that holds secrets (the credential file, a
// private key): it must be a regular file that neither group nor others
// may read or write.
func ReadSecret(path string) ([]byte, error) {
	return readChecked(path, 0o077,
		"lets group or others access it, and it holds secret keys; run: chmod 600 "+path)
}

// ReadProtected reads a file that decides whom the device trusts (a
// certificate, a trust anchor, the access control list): it must be a
// regular file that neither group nor others may write.
func ReadProtected(path string) ([]byte, error) {
	return readChecked(path, 0o022,
		"lets group or others change it, and it decides whom the device trusts; run: chmod go-w "+path)
}

// readChecked opens path, checks the mode of the opened file against the
// forbidden bits (on the handle: no window between check and read), and
// reads it.
func readChecked(path string, forbidden fs.FileMode, why string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&forbidden != 0 {
		return nil, fmt.Errorf("%s: %w: mode %04o %s", path, ErrInsecurePermissions, uint32(perm), why)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}
