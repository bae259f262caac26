package tufrepo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Installed describes the software a device runs, for SelectTarget.
type Installed struct {
	// Counter of the installed package, as the device persisted it when it
	// installed the package. Zero when unknown (e.g. a factory image).
	Counter int64
	// Version is the installed version (sv). Used only when Counter is zero.
	Version string
}

// Selection is the package SelectTarget chose.
type Selection struct {
	Path   string                // TUF target path, for the updater's GetTargetInfo / DownloadTarget
	File   *metadata.TargetFiles // length and hashes to verify the download against
	Custom Custom
}

// SelectTarget returns the newest package for model, from targets metadata
// the caller has verified (for instance the updater's trusted top-level
// targets), that is newer than what is installed: the highest counter above
// the installed counter. found is false when there is none.
//
// With a zero installed counter, a target of the model whose version equals
// installed.Version supplies the counter; without one, a target qualifies
// when its version is greater by semantic version precedence, and targets
// whose versions cannot be compared with the installed one never qualify,
// since offering a package that may be older is worse than offering none.
//
// When the package chosen has malformed requirements (ParseCustom fails
// with ErrRequirement), SelectTarget fails with an error wrapping
// ErrRequirement rather than fall back to an older package: the vendor
// signed a requirement the device cannot read, and silently installing
// something else would hide that.
func SelectTarget(targets *metadata.Metadata[metadata.TargetsType], model string, installed Installed) (sel Selection, found bool, err error) {
	if targets == nil {
		return Selection{}, false, fmt.Errorf("select target: %w: no targets metadata", ErrInvalid)
	}
	if model == "" {
		return Selection{}, false, fmt.Errorf("select target: %w: empty model", ErrInvalid)
	}
	floor, byVersion := installed.Counter, false
	if floor == 0 && installed.Version != "" {
		if c, ok := InstalledCounter(targets, model, installed.Version); ok {
			floor = c
		} else {
			byVersion = true
		}
	}
	var selErr error // ParseCustom's error for sel
	for p, tf := range targets.Signed.Targets {
		c, err := ParseCustom(tf)
		if !isPackage(err) || c.Model != model || c.Counter <= floor {
			continue
		}
		if byVersion {
			cmp, ok := CompareVersions(c.Version, installed.Version)
			if !ok || cmp <= 0 {
				continue
			}
		}
		// Counters are unique per model in repositories built here; the
		// path breaks ties in hand-edited ones so the choice is stable.
		if !found || c.Counter > sel.Custom.Counter || (c.Counter == sel.Custom.Counter && p < sel.Path) {
			sel, found, selErr = Selection{Path: p, File: tf, Custom: c}, true, err
		}
	}
	if selErr != nil {
		return Selection{}, false, fmt.Errorf("select target %s: %w", sel.Path, selErr)
	}
	return sel, found, nil
}

// InstalledCounter maps an installed version to its package counter: the
// counter of the target for model with exactly that version.
func InstalledCounter(targets *metadata.Metadata[metadata.TargetsType], model, version string) (int64, bool) {
	if targets == nil {
		return 0, false
	}
	var best int64
	for _, tf := range targets.Signed.Targets {
		c, ok := identify(tf)
		if ok && c.Model == model && c.Version == version && c.Counter > best {
			best = c.Counter
		}
	}
	return best, best > 0
}

// CompareVersions orders two version strings by semantic version precedence
// (semver.org 2.0.0 §11): -1, 0 or +1, and ok=false when either does not
// parse. A leading "v" is allowed and missing minor or patch parts count as
// zero ("1.2" == "1.2.0"); build metadata after "+" is ignored.
func CompareVersions(a, b string) (cmp int, ok bool) {
	va, okA := parseVersion(a)
	vb, okB := parseVersion(b)
	if !okA || !okB {
		return 0, false
	}
	for i := range va.core {
		if va.core[i] != vb.core[i] {
			if va.core[i] < vb.core[i] {
				return -1, true
			}
			return 1, true
		}
	}
	// A version without pre-release outranks the same one with it.
	switch {
	case len(va.pre) == 0 && len(vb.pre) == 0:
		return 0, true
	case len(va.pre) == 0:
		return 1, true
	case len(vb.pre) == 0:
		return -1, true
	}
	for i := 0; i < len(va.pre) && i < len(vb.pre); i++ {
		if c := comparePre(va.pre[i], vb.pre[i]); c != 0 {
			return c, true
		}
	}
	switch {
	case len(va.pre) < len(vb.pre):
		return -1, true
	case len(va.pre) > len(vb.pre):
		return 1, true
	}
	return 0, true
}

type semver struct {
	core [3]uint64
	pre  []string
}

func parseVersion(s string) (semver, bool) {
	var v semver
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		if i == len(s)-1 {
			return v, false
		}
		v.pre = strings.Split(s[i+1:], ".")
		for _, id := range v.pre {
			if id == "" || !isAlnumHyphen(id) || (len(id) > 1 && id[0] == '0' && isDigits(id)) {
				return v, false
			}
		}
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		if !isDigits(p) || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, false
		}
		v.core[i] = n
	}
	return v, true
}

// comparePre orders two pre-release identifiers: numeric ones numerically
// and below alphanumeric ones, which compare in ASCII order.
func comparePre(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		if len(a) != len(b) { // no leading zeros to worry about in order
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnumHyphen(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}
