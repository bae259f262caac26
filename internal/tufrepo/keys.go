package tufrepo

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/fsync"
)

// PrivateKey is an ed25519 signing key and its TUF key ID.
type PrivateKey struct {
	ID  string // TUF key ID: hex sha256 of the canonical JSON public key
	Key ed25519.PrivateKey
}

// GenerateKey makes a new ed25519 signing key.
func GenerateKey() (*PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return newPrivateKey(priv)
}

func newPrivateKey(priv ed25519.PrivateKey) (*PrivateKey, error) {
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	return &PrivateKey{ID: id, Key: priv}, nil
}

// PublicKey returns the key as TUF root metadata lists it.
func (k *PrivateKey) PublicKey() (*metadata.Key, error) {
	pub, err := metadata.KeyFromPublicKey(k.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", k.ID, err)
	}
	return pub, nil
}

func (k *PrivateKey) signer() (signature.Signer, error) {
	s, err := signature.LoadSigner(k.Key, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", k.ID, err)
	}
	return s, nil
}

// WriteKeyFile stores k at path as PKCS#8 PEM with mode 0600. It refuses to
// replace an existing file: overwriting a key by mistake loses it for good.
func WriteKeyFile(path string, k *PrivateKey) error {
	if k == nil || len(k.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("write key %s: %w: not an ed25519 key", path, ErrInvalid)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("write key %s: %w", path, ErrExists)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return writeFileAtomic(path, data, 0o600)
}

// ReadKeyFile loads a key written by WriteKeyFile (or any PKCS#8 PEM ed25519
// key). Like ssh, it refuses a file that group or others can read.
func ReadKeyFile(path string) (*PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("read key %s: mode %v: %w", path, fi.Mode().Perm(), ErrKeyPermissions)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read key %s: %w: no PRIVATE KEY PEM block", path, ErrInvalid)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read key %s: %w: %T is not ed25519", path, ErrInvalid, parsed)
	}
	k, err := newPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return k, nil
}

// keyFileName is where a key of role lives in DIR/keys. The role in the name
// only helps people; which role a key signs for is decided by root metadata.
func keyFileName(role, id string) string {
	short := id
	if len(short) > 16 {
		short = short[:16]
	}
	return role + "-" + short + ".pem"
}

// keyring is the private keys found in DIR/keys, by key ID.
type keyring struct {
	keys  map[string]*PrivateKey
	paths map[string]string
}

// loadKeyring reads every *.pem directly in DIR/keys.
func loadKeyring(dir string) (*keyring, error) {
	kr := &keyring{keys: map[string]*PrivateKey{}, paths: map[string]string{}}
	entries, err := os.ReadDir(filepath.Join(dir, keysDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return kr, nil // all keys offline: fine until something must be signed
		}
		return nil, fmt.Errorf("read keys: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".pem") {
			continue
		}
		p := filepath.Join(dir, keysDir, e.Name())
		k, err := ReadKeyFile(p)
		if err != nil {
			return nil, err
		}
		kr.keys[k.ID] = k
		kr.paths[k.ID] = p
	}
	return kr, nil
}

// addKey stores k in DIR/keys for role and remembers it.
func (kr *keyring) addKey(dir, role string, k *PrivateKey) error {
	if _, ok := kr.keys[k.ID]; ok {
		return nil
	}
	p := filepath.Join(dir, keysDir, keyFileName(role, k.ID))
	if err := WriteKeyFile(p, k); err != nil {
		return err
	}
	kr.keys[k.ID] = k
	kr.paths[k.ID] = p
	return nil
}

// retire moves the key file of id to DIR/keys/retired.
func (kr *keyring) retire(dir, id string) error {
	p, ok := kr.paths[id]
	if !ok {
		return nil // offline key: nothing here to move
	}
	if err := os.MkdirAll(filepath.Join(dir, retiredDir), 0o700); err != nil {
		return fmt.Errorf("retire key %s: %w", id, err)
	}
	dst := filepath.Join(dir, retiredDir, filepath.Base(p))
	if err := os.Rename(p, dst); err != nil {
		return fmt.Errorf("retire key %s: %w", id, err)
	}
	delete(kr.keys, id)
	delete(kr.paths, id)
	return fsync.Dir(filepath.Join(dir, keysDir))
}

// sign replaces m's signatures with one from every key in keyIDs that the
// keyring holds, and fails unless at least threshold signed.
func sign[T metadata.Roles](m *metadata.Metadata[T], kr *keyring, role string, keyIDs []string, threshold int) error {
	m.ClearSignatures()
	signed := 0
	for _, id := range keyIDs {
		k, ok := kr.keys[id]
		if !ok {
			continue
		}
		s, err := k.signer()
		if err != nil {
			return err
		}
		if _, err := m.Sign(s); err != nil {
			return fmt.Errorf("sign %s with %s: %w", role, id, err)
		}
		signed++
	}
	if signed < threshold {
		return fmt.Errorf("sign %s: %d of %d keys available: %w", role, signed, threshold, ErrNotEnoughKeys)
	}
	return nil
}

// signRole signs m for a top-level role as root lists it and checks the
// result verifies, so a repository is never written with metadata its own
// root would reject.
func signRole[T metadata.Roles](m *metadata.Metadata[T], root *metadata.Metadata[metadata.RootType], kr *keyring, role string) error {
	r, ok := root.Signed.Roles[role]
	if !ok {
		return fmt.Errorf("sign %s: %w: role not in root", role, ErrInvalid)
	}
	if err := sign(m, kr, role, r.KeyIDs, r.Threshold); err != nil {
		return err
	}
	if err := root.VerifyDelegate(role, m); err != nil {
		return fmt.Errorf("verify %s after signing: %w", role, err)
	}
	return nil
}
