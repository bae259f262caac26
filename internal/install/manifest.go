package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/ocfupdate/ocfupdate/internal/step"
)

// ManifestName is the manifest file at the root of a slots package.
const ManifestName = "ocfupdate.json"

const maxManifestSize = 64 << 10

// Manifest describes the content of a slots package. Unknown fields are
// ignored so that newer packages stay installable by older agents.
type Manifest struct {
	// Version of the software in the package; must equal the version of the
	// TUF target being installed (the signed metadata decides, the manifest
	// must agree).
	Version string `json:"version"`
	// Model (dmno) the package is for; when both it and the installer's
	// model are set they must be equal.
	Model string `json:"model,omitempty"`
	// Exec is the program to restart into, relative to the slot, e.g.
	// "bin/ocfupdated". Optional; it must be an executable regular file of
	// the package when set.
	Exec string `json:"exec,omitempty"`
}

// readManifest reads and checks the manifest of the tree in root against the
// target being installed and the device's model.
func readManifest(root *os.Root, t step.Target, model string) (Manifest, error) {
	m, err := loadManifest(root)
	if err != nil {
		return m, err
	}
	if m.Version != t.Version {
		return m, badf("%s says version %q, the signed target is %q", ManifestName, m.Version, t.Version)
	}
	if model != "" && m.Model != "" && m.Model != model {
		return m, badf("package is for model %q, this device is %q", m.Model, model)
	}
	if m.Exec != "" {
		if err := checkExec(root, m.Exec); err != nil {
			return m, err
		}
		m.Exec = path.Clean(m.Exec)
	}
	return m, nil
}

// loadManifest reads and decodes the manifest at the root of a tree.
func loadManifest(root *os.Root) (Manifest, error) {
	var m Manifest
	fi, err := root.Lstat(ManifestName)
	if err != nil {
		return m, badf("no %s at the root of the package", ManifestName)
	}
	if !fi.Mode().IsRegular() {
		return m, badf("%s is not a regular file", ManifestName)
	}
	if fi.Size() > maxManifestSize {
		return m, badf("%s is %d bytes, more than %d", ManifestName, fi.Size(), maxManifestSize)
	}
	f, err := root.Open(ManifestName)
	if err != nil {
		return m, fmt.Errorf("open %s: %w", ManifestName, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return m, fmt.Errorf("read %s: %w", ManifestName, err)
	}
	if err := decodeManifest(b, &m); err != nil {
		return m, err
	}
	return m, nil
}

func decodeManifest(b []byte, m *Manifest) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(m); err != nil {
		return badf("%s: %v", ManifestName, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badf("%s: trailing data after the JSON object", ManifestName)
	}
	if err := validVersion(m.Version); err != nil {
		return badf("%s: %v", ManifestName, err)
	}
	return nil
}

// checkExec: the restart program must be an executable regular file inside
// the slot (possibly behind a symlink that stays inside).
func checkExec(root *os.Root, exe string) error {
	if !filepath.IsLocal(exe) {
		return badf("%s: exec %q is not a path inside the package", ManifestName, exe)
	}
	f, err := root.Open(exe)
	if err != nil {
		return badf("%s: exec %q: %v", ManifestName, exe, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", exe, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return badf("%s: exec %q is not an executable file", ManifestName, exe)
	}
	return nil
}

// validVersion bounds a version string: it ends up in state files, details
// and environment variables.
func validVersion(v string) error {
	if v == "" {
		return errors.New("empty version")
	}
	if len(v) > 128 {
		return fmt.Errorf("version of %d bytes, more than 128", len(v))
	}
	if strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		return fmt.Errorf("version %q contains spaces or control characters", v)
	}
	return nil
}
