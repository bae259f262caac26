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
