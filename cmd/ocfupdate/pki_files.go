package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ocfupdate/ocfupdate/internal/acl"
	"github.com/ocfupdate/ocfupdate/internal/creds"
)

// credsFile is the device's credential file as internal/creds reads it
// (docs/security.md). pki edits it field by field and keeps what it does
// not touch, "source" included. It holds keys in hex: it is written to
// disk only, never printed.
type credsFile struct {
	PSK    []credsPSK      `json:"psk,omitempty"`
	Cert   string          `json:"cert,omitempty"`
	Key    string          `json:"key,omitempty"`
	CA     []string        `json:"ca,omitempty"`
	Source json.RawMessage `json:"source,omitempty"`
}

type credsPSK struct {
	Identity string `json:"identity"`
	KeyHex   string `json:"key_hex"`
}

// readCredsFile reads path if it exists (an empty file otherwise). It must
// load as ocfupdated loads it (internal/creds): a credential file others
// may read, or one the device would refuse anyway, is reported before
// anything is written.
func readCredsFile(path string) (credsFile, error) {
	var f credsFile
	b, err := creds.ReadSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("credentials: %w", err)
	}
	if _, err := creds.Load(path); err != nil {
		return f, fmt.Errorf("fix the existing file first: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a field pki does not know would be lost on rewrite
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("credentials %s: invalid JSON: %w", path, err)
	}
	return f, nil
}

// writeCredsFile writes f to path (mode 0600), atomically, but only after
// internal/creds has loaded it as ocfupdated will: pki never leaves a
// credential file the device would refuse.
func writeCredsFile(path string, f credsFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, or on failure
	if err := writeSynced(tmp, b, modeSecret); err != nil {
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	// The copy sits in the same directory, so relative paths resolve alike.
	if _, err := creds.Load(tmp.Name()); err != nil {
		return fmt.Errorf("credentials %s would not load, left unchanged: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}

// addPSK adds identity's key to the credential file at path, creating it
// (and its directory) if needed. An identity already listed is an error:
// replacing its key would lock out whoever holds the old one.
func addPSK(path, identity string, key []byte) error {
	f, err := readCredsFile(path)
	if err != nil {
		return err
	}
	for _, p := range f.PSK {
		if p.Identity == identity {
			return fmt.Errorf("%s already has PSK identity %q: remove its entry first to give it a new key", path, identity)
		}
	}
	f.PSK = append(f.PSK, credsPSK{Identity: identity, KeyHex: fmt.Sprintf("%x", key)})
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return err
	}
	return writeCredsFile(path, f)
}

// readACLFile reads an ACL file if it exists (no entries otherwise), with
// the checks ocfupdated applies.
func readACLFile(path string) ([]acl.Entry, error) {
	b, err := creds.ReadProtected(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	var entries []acl.Entry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("acl %s: invalid JSON: %w", path, err)
	}
	return entries, nil
}

// upsertACL puts e into the ACL file at path (mode 0644), replacing an
// entry for the same subject, creating the file if needed. The result is
// checked as ocfupdated checks it before it is written.
func upsertACL(path string, e acl.Entry) error {
	entries, err := readACLFile(path)
	if err != nil {
		return err
	}
	replaced := false
	for i := range entries {
		if entries[i].Subject == e.Subject {
			entries[i], replaced = e, true
		}
	}
	if !replaced {
		entries = append(entries, e)
	}
	if _, err := acl.New(entries); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return fmt.Errorf("acl: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("acl: %w", err)
	}
	return writeReplace(path, append(b, '\n'), modePublic)
}

// defaultGrant are the resources pki's ACL entries grant: the software
// update resource at its default href, and pstat (tm triggers).
var defaultGrant = []string{"/oc/swu", "/oic/sec/pstat"}
