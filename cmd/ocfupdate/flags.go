package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// allRoles are the top-level TUF roles, in the order tables show them.
var allRoles = []string{tufrepo.RoleRoot, tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp}

// day is the unit of the "d" suffix that parseDuration adds to Go's syntax.
const day = 24 * time.Hour

// parseDuration parses Go duration syntax ("36h", "90m") with one addition:
// a leading whole number of days with the suffix "d" ("90d", "1d12h"), the
// unit expiry periods are thought of in.
func parseDuration(s string) (time.Duration, error) {
	bad := func() error {
		return fmt.Errorf("bad duration %q: want e.g. 90d, 36h, 1d12h", s)
	}
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 63)
		if err != nil || i == 0 || n > uint64(math.MaxInt64/int64(day)) {
			return 0, bad()
		}
		days, rest = time.Duration(n)*day, s[i+1:]
		if rest == "" {
			return days, nil
		}
		if rest[0] == '-' || rest[0] == '+' {
			return 0, bad() // "0d-1h": a sign belongs before the whole duration, not inside it
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || (days > 0 && d < 0) || d > math.MaxInt64-days {
		return 0, bad()
	}
	return days + d, nil
}

// Binary units of byte counts, as parseSize reads and formatSize writes
// them, largest first. Binary only: "MB" could mean 10^6 or 2^20.
var sizeUnits = []struct {
	name  string
	bytes int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseSize parses a byte count: a whole number with an optional binary
// unit B, KiB, MiB or GiB, in any case ("4MiB", "512 KiB", "1048576").
// Decimal units ("MB") are refused rather than guessed at.
func parseSize(s string) (int64, error) {
	bad := func() error {
		return fmt.Errorf("bad size %q: want a whole number of bytes with an optional unit KiB, MiB or GiB, e.g. 4MiB", s)
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad() // also "-1" and "+1": a size has no sign
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, bad()
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			if n > math.MaxInt64/u.bytes {
				return 0, bad()
			}
			return n * u.bytes, nil
		}
	}
	return 0, bad()
}

// formatSize writes n in parseSize's syntax with the largest unit that
// divides it ("4MiB", "1536KiB", "1000"), so that it reads back exactly.
func formatSize(n int64) string {
	if n != 0 {
		for _, u := range sizeUnits[:len(sizeUnits)-1] {
			if n%u.bytes == 0 {
				return fmt.Sprintf("%d%s", n/u.bytes, u.name)
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// sizeFlag is a flag holding a byte count in parseSize's syntax.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) Type() string { return "size" }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return formatSize(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

// roleAssignments is a repeatable flag of ROLE=VALUE pairs (also several
// per flag, separated by commas), for the roles in allowed. Later values
// for a role replace earlier ones.
type roleAssignments struct {
	allowed []string
	parse   func(role, value string) error
	what    string // "N" or "DURATION", for the type shown in help
}

func (r *roleAssignments) Type() string   { return "role=" + r.what }
func (r *roleAssignments) String() string { return "" }

func (r *roleAssignments) Set(s string) error {
	for pair := range strings.SplitSeq(s, ",") {
		role, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || value == "" {
			return fmt.Errorf("want ROLE=%s, got %q", r.what, pair)
		}
		if !slices.Contains(r.allowed, role) {
			return fmt.Errorf("unknown role %q: want one of %s", role, strings.Join(r.allowed, ", "))
		}
		if err := r.parse(role, value); err != nil {
			return err
		}
	}
	return nil
}

// thresholdFlag sets fields of t from --threshold role=N.
func thresholdFlag(t *tufrepo.Thresholds) *roleAssignments {
	return &roleAssignments{allowed: allRoles, what: "N", parse: func(role, value string) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return fmt.Errorf("threshold of %s: %q is not a whole number of at least 1", role, value)
		}
		*roleField(role, &t.Root, &t.Targets, &t.Snapshot, &t.Timestamp) = n
		return nil
	}}
}

// expiryFlag sets fields of e from --expires role=DURATION, for roles.
func expiryFlag(e *tufrepo.Expiries, roles ...string) *roleAssignments {
	return &roleAssignments{allowed: roles, what: "DURATION", parse: func(role, value string) error {
		d, err := parseDuration(value)
		if err != nil {
			return fmt.Errorf("expiry of %s: %w", role, err)
		}
		if d <= 0 {
			return errors.New("expiry of " + role + " must be positive")
		}
		*roleField(role, &e.Root, &e.Targets, &e.Snapshot, &e.Timestamp) = d
		return nil
	}}
}

// roleField picks the field for role among the four, in allRoles order.
func roleField[T any](role string, root, targets, snapshot, timestamp *T) *T {
	switch role {
	case tufrepo.RoleRoot:
		return root
	case tufrepo.RoleTargets:
		return targets
	case tufrepo.RoleSnapshot:
		return snapshot
	default:
		return timestamp
	}
}
