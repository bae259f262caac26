package tufrepo

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ocfupdate/ocfupdate/internal/fsync"
)

// Custom is a package's custom target metadata.
type Custom struct {
	Model   string `json:"model"`   // device model (dmno) the package is for
	Version string `json:"version"` // software version (sv after install)
	Counter int64  `json:"counter"` // strictly increasing per model; orders packages
	// MinRAM is the memory in bytes the new version needs to install and
	// run; a device with less available refuses it before downloading
	// (swupdateresult 2). Zero, written as no field at all, states no
	// requirement, so packages without one keep their metadata unchanged.
	MinRAM uint64 `json:"min_ram,omitempty"`
}

// ParseCustom decodes the custom metadata of a target. It fails with
// ErrInvalid for targets that are not packages (no custom metadata, or no
// model, version or counter). A package whose requirements are malformed
// (a min_ram that is not an unsigned integer of bytes: a string, a
// negative or fractional number, more than 64 bits) fails with an error
// that also wraps ErrRequirement; the returned Custom then still names the
// package (model, version, counter; MinRAM zero), so that it keeps its
// place among the model's packages and a device can say which package it
// refuses. A null min_ram is no requirement, like an absent one.
func ParseCustom(tf *metadata.TargetFiles) (Custom, error) {
	if tf == nil || tf.Custom == nil {
		return Custom{}, fmt.Errorf("custom metadata: %w: none", ErrInvalid)
	}
	var raw struct {
		Model   string          `json:"model"`
		Version string          `json:"version"`
		Counter int64           `json:"counter"`
		MinRAM  json.RawMessage `json:"min_ram"` // parsed on its own: see ErrRequirement
	}
	if err := json.Unmarshal(*tf.Custom, &raw); err != nil {
		return Custom{}, fmt.Errorf("custom metadata: %w: %w", ErrInvalid, err)
	}
	c := Custom{Model: raw.Model, Version: raw.Version, Counter: raw.Counter}
	if c.Model == "" || c.Version == "" || c.Counter < 1 {
		return Custom{}, fmt.Errorf("custom metadata %+v: %w: needs model, version and a counter >= 1", c, ErrInvalid)
	}
	if len(raw.MinRAM) > 0 && string(raw.MinRAM) != "null" {
		// Unmarshalling into a uint64 refuses strings, signs, fractions,
		// exponents and overflow: exactly the malformed values.
		if err := json.Unmarshal(raw.MinRAM, &c.MinRAM); err != nil {
			return Custom{Model: c.Model, Version: c.Version, Counter: c.Counter},
				fmt.Errorf("custom metadata of %s %s: min_ram %s: %w: %w: want bytes as an unsigned integer",
					c.Model, c.Version, raw.MinRAM, ErrInvalid, ErrRequirement)
		}
	}
	return c, nil
}

// identify is ParseCustom for ordering packages: one whose requirements
// are malformed is still a package of its model, with a version and a
// counter no other package may reuse.
func identify(tf *metadata.TargetFiles) (Custom, bool) {
	c, err := ParseCustom(tf)
	return c, isPackage(err)
}

// isPackage reports whether ParseCustom's err still names a package: no
// error, or only malformed requirements.
func isPackage(err error) bool { return err == nil || errors.Is(err, ErrRequirement) }

// maxNameLen bounds model, version and file name lengths. A file is stored
// as the 128 hex digits of its sha512, a dot and its name, which must fit
// the usual 255-byte limit of a file name.
const maxNameLen = 100

// validName reports whether s may be used as a path segment: it becomes part
// of URLs and file names without escaping.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '~' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return true
}

// AddOptions configures AddTarget.
type AddOptions struct {
	// Counter for the new package. Zero: one above the model's highest.
	// Otherwise it must be above the highest, or ErrInvalid.
	Counter int64
	// Name of the target file in the repository. Empty: the base name of
	// the source file.
	Name string
	// MinRAM is the RAM in bytes the package needs to install and run
	// (Custom.MinRAM). Zero: no requirement. At most math.MaxInt64, the
	// largest integer TUF's canonical JSON signs.
	MinRAM uint64
}

// Target is one package of a repository.
type Target struct {
	Path      string            // TUF target path, MODEL/VERSION/NAME
	Custom                      // model, version, counter, min_ram
	Length    int64             // bytes
	Hashes    map[string]string // algorithm → hex digest (sha256, sha512)
	Published bool              // false while only staged
}

// AddTarget copies file into the repository as a package for model at
// version and stages it; Publish makes it visible to clients. It fails with
// ErrExists when the model already has that version.
func AddTarget(dir, file, model, version string, opts AddOptions) (Target, error) {
	name := opts.Name
	if name == "" {
		name = filepath.Base(file)
	}
	for _, f := range []struct{ what, v string }{{"model", model}, {"version", version}, {"file name", name}} {
		if !validName(f.v) {
			return Target{}, fmt.Errorf("add %s: %s %q: %w: want 1-%d of [A-Za-z0-9._~+-], not starting with '.'", file, f.what, f.v, ErrInvalid, maxNameLen)
		}
	}
	if opts.Counter < 0 {
		return Target{}, fmt.Errorf("add %s: counter %d: %w", file, opts.Counter, ErrInvalid)
	}
	if opts.MinRAM > math.MaxInt64 {
		// TUF's canonical JSON signs 64-bit signed integers only: staged,
		// it would make every Publish fail.
		return Target{}, fmt.Errorf("add %s: min_ram %d: %w: at most %d bytes can be signed", file, opts.MinRAM, ErrInvalid, int64(math.MaxInt64))
	}
	unlock, err := lockRepo(dir)
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	defer unlock()
	if _, err := loadRoot(dir); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	working, _, err := loadWorking(dir)
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}

	targetPath := path.Join(model, version, name)
	var highest int64
	for p, tf := range working.Signed.Targets {
		if p == targetPath {
			return Target{}, fmt.Errorf("add %s: target %s: %w", file, p, ErrExists)
		}
		c, ok := identify(tf)
		if !ok || c.Model != model {
			continue
		}
		if c.Version == version {
			return Target{}, fmt.Errorf("add %s: model %s version %s (%s): %w", file, model, version, p, ErrExists)
		}
		highest = max(highest, c.Counter)
	}
	counter := highest + 1
	if opts.Counter != 0 {
		if opts.Counter <= highest {
			return Target{}, fmt.Errorf("add %s: counter %d not above %d, the highest of model %s: %w", file, opts.Counter, highest, model, ErrInvalid)
		}
		counter = opts.Counter
	}

	dst := filepath.Join(dir, targetsDir, model, version)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	tmp, digest, err := copyHashed(file, dst)
	if err != nil {
		return Target{}, fmt.Errorf("add: %w", err)
	}
	h256, h512 := hex.EncodeToString(digest.sha256), hex.EncodeToString(digest.sha512)
	first := filepath.Join(dst, h256+"."+name)
	if err := os.Rename(tmp, first); err != nil {
		_ = os.Remove(tmp)
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	if err := linkOrCopy(first, filepath.Join(dst, h512+"."+name)); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	if err := fsync.Dir(dst); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}

	custom := Custom{Model: model, Version: version, Counter: counter, MinRAM: opts.MinRAM}
	raw, err := json.Marshal(custom)
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	msg := json.RawMessage(raw)
	working.Signed.Targets[targetPath] = &metadata.TargetFiles{
		Length: digest.length,
		Hashes: metadata.Hashes{"sha256": digest.sha256, "sha512": digest.sha512},
		Custom: &msg,
		Path:   targetPath,
	}
	data, err := working.ToBytes(true)
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, stagedDir), 0o755); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, stagedFile), data, 0o644); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", file, err)
	}
	return Target{
		Path:   targetPath,
		Custom: custom,
		Length: digest.length,
		Hashes: map[string]string{"sha256": h256, "sha512": h512},
	}, nil
}

// ListTargets returns the repository's packages, published and staged,
// ordered by model, then counter. Targets without package custom metadata
// (not added by AddTarget), or whose requirements are malformed, are
// listed with a zero Custom.
func ListTargets(dir string) ([]Target, error) {
	if _, err := loadRoot(dir); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	working, published, err := loadWorking(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := make([]Target, 0, len(working.Signed.Targets))
	for p, tf := range working.Signed.Targets {
		c, err := ParseCustom(tf)
		if err != nil {
			c = Custom{} // not a package a device would take
		}
		t := Target{Path: p, Custom: c, Length: tf.Length, Hashes: map[string]string{}}
		for alg, h := range tf.Hashes {
			t.Hashes[alg] = hex.EncodeToString(h)
		}
		if published != nil {
			if ptf, ok := published.Signed.Targets[p]; ok && ptf.Equal(*tf) {
				t.Published = true
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		if a.Counter != b.Counter {
			return a.Counter < b.Counter
		}
		return a.Path < b.Path
	})
	return out, nil
}

// loadStaged reads DIR/staged/targets.json, or returns nil when nothing is
// staged.
func loadStaged(dir string) (*metadata.Metadata[metadata.TargetsType], error) {
	return loadOptional[metadata.TargetsType](filepath.Join(dir, stagedFile))
}

// loadWorking returns the targets the next Publish would sign (staged, else
// published, else empty) and the published targets (nil before the first
// Publish).
func loadWorking(dir string) (working, published *metadata.Metadata[metadata.TargetsType], err error) {
	published, err = loadOptional[metadata.TargetsType](filepath.Join(dir, metadataDir, "targets.json"))
	if err != nil {
		return nil, nil, err
	}
	working, err = loadStaged(dir)
	if err != nil {
		return nil, nil, err
	}
	if working == nil {
		working = metadata.Targets()
		if published != nil {
			// A copy: callers add to the working set.
			working.Signed.Targets = maps.Clone(published.Signed.Targets)
		}
	}
	if working.Signed.Targets == nil {
		working.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	return working, published, nil
}

// targetFilePath is where the package for target path p with digest h
// lives on disk.
func targetFilePath(dir, p string, h []byte) string {
	return filepath.Join(dir, repositoryDir, filepath.FromSlash(RemoteTargetPath(p, h)))
}

// Paths below a repository's base URL (purl): go-tuf's updater is
// configured with RemoteMetadataURL = purl + "/" + MetadataPath and
// RemoteTargetsURL = purl + "/" + TargetsPath.
const (
	MetadataPath = "metadata"
	TargetsPath  = "targets"
)

// RemoteTargetPath is the path below the repository's base URL at which the
// package for target path p is served, named by its digest h (either of the
// target's hashes): "targets/MODEL/VERSION/HEX(h).NAME". A device fetcher
// that streams packages itself (Range, Block2) requests this path; go-tuf's
// DownloadTarget builds the same one.
func RemoteTargetPath(p string, h []byte) string {
	d, name := path.Split(p)
	return path.Join(TargetsPath, d, hex.EncodeToString(h)+"."+name)
}
