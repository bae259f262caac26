package swu

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// ParseOptions tunes ParseUpdate.
type ParseOptions struct {
	// MaxPURLLength is the longest purl accepted, in bytes. Zero means
	// DefaultMaxPURLLength.
	MaxPURLLength int
}

func (o ParseOptions) maxPURL() int {
	if o.MaxPURLLength > 0 {
		return o.MaxPURLLength
	}
	return DefaultMaxPURLLength
}

// maxUpdateTimeLength bounds updatetime before any parsing; the draft's
// maxLength is 64 and no RFC 3339 date-time needs more.
const maxUpdateTimeLength = 64

// writable lists the writable properties in the order they are reported.
var writable = []string{PropPURL, PropAction, PropUpdateTime}

// actionNames are the canonical actions, for diagnostics.
var actionNames = []string{string(ActionIdle), string(ActionCheck), string(ActionFetch), string(ActionUpgrade)}

// ParseUpdate validates the CBOR body of an UPDATE (POST) to the resource
// against the device's clock now and returns what it asks for. Any problem
// is an *Error naming the property; the caller then applies nothing.
func ParseUpdate(body []byte, now time.Time, opts ParseOptions) (Update, error) {
	if len(body) == 0 {
		return Update{}, &Error{Message: "the UPDATE has no payload; send a CBOR map with purl, swupdateaction and/or updatetime"}
	}
	if len(body) > ocf.MaxBodySize {
		return Update{}, &Error{Message: fmt.Sprintf("the payload is %d bytes; at most %d are accepted", len(body), ocf.MaxBodySize)}
	}
	m, err := ocf.DecodeMap(body)
	switch {
	case errors.Is(err, ocf.ErrNotMap):
		return Update{}, &Error{Message: "the payload must be a CBOR map with text keys"}
	case err != nil:
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // drop the "decode:" prefix; the sentence says it
		}
		return Update{}, &Error{Message: "the payload is not valid CBOR: " + err.Error()}
	case len(m) == 0:
		return Update{}, &Error{Message: "the UPDATE is empty; send at least one of purl, swupdateaction, updatetime"}
	}

	// Names first, in sorted order, so that the reply does not depend on
	// map iteration order and a read-only property is never half-processed.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case k == PropPURL || k == PropAction || k == PropUpdateTime || k == PropUpdateTimeDraft:
		case readOnly[k]:
			return Update{}, errorf(k, "%s is read-only", k)
		default:
			return Update{}, errorf(k, "unknown property %s; the writable properties are %s", quote(k), joinQuoted(writable, "and"))
		}
	}
	timeKey := PropUpdateTime
	if _, ok := m[PropUpdateTimeDraft]; ok {
		if _, both := m[PropUpdateTime]; both {
			return Update{}, errorf(PropUpdateTime, "both updatetime and updateTime are present; send one of them")
		}
		timeKey = PropUpdateTimeDraft
	}

	now = now.UTC()
	var u Update
	if v, ok := m[PropPURL]; ok {
		s, ok := v.(string)
		if !ok {
			return Update{}, errorf(PropPURL, "purl must be a text string, not %s", TypeName(v))
		}
		if s != "" {
			if _, bad := checkPURL(s, opts.maxPURL()); bad != "" {
				return Update{}, errorf(PropPURL, "purl %s", bad)
			}
		}
		u.PURL = &s
	}
	if v, ok := m[PropAction]; ok {
		s, ok := v.(string)
		if !ok {
			return Update{}, errorf(PropAction, "swupdateaction must be a text string, not %s", TypeName(v))
		}
		a, ok := actionAliases[s]
		if !ok {
			return Update{}, errorf(PropAction, "swupdateaction must be %s, not %s", joinQuoted(actionNames, "or"), quote(s))
		}
		u.Action = &a
	}
	if v, ok := m[timeKey]; ok {
		s, ok := v.(string)
		if !ok {
			return Update{}, errorf(timeKey, "%s must be a text string, not %s", timeKey, TypeName(v))
		}
		if err := parseUpdateTime(&u, timeKey, s, now); err != nil {
			return Update{}, err
		}
	}
	if err := checkCombination(u, timeKey); err != nil {
		return Update{}, err
	}
	return u, nil
}

// parseUpdateTime sets the updatetime fields of u from s.
func parseUpdateTime(u *Update, key, s string, now time.Time) error {
	switch s {
	case UpdateTimeNow:
		u.UpdateTime, u.Now = &now, true
		return nil
	case UpdateTimeNone:
		u.CancelTime = true
		return nil
	}
	t, err := parseDateTime(s)
	if err != nil {
		return errorf(key, "%s %s", key, err.Error())
	}
	if t.Before(now) {
		return errorf(key, "updatetime is in the past: %s is before the device's time %s",
			t.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	u.UpdateTime = &t
	return nil
}

// RFC 3339 date-time (section 5.6), and the same without seconds, the form
// the draft's examples use. time.Parse alone is too lenient (it accepts a
// one-digit hour, for one), so the shape is checked first.
var (
	dateTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-](\d{2}):(\d{2}))$`)
	zonelessRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$`)
)

const (
	layoutSeconds = time.RFC3339             // also parses a fraction
	layoutMinutes = "2006-01-02T15:04Z07:00" // the draft's "2030-01-09T14:30Z"
)

// parseDateTime parses an RFC 3339 date-time with a zone and returns it in
// UTC. The error completes a sentence that starts with the property name.
func parseDateTime(s string) (time.Time, error) {
	if len(s) > maxUpdateTimeLength {
		return time.Time{}, fmt.Errorf("is %d bytes long; a date-time needs at most %d", len(s), maxUpdateTimeLength)
	}
	// RFC 3339 allows lowercase t and z; these are the only letters a
	// valid date-time can contain, so mapping them changes nothing else.
	orig := s
	s = strings.Map(func(r rune) rune {
		switch r {
		case 't':
			return 'T'
		case 'z':
			return 'Z'
		}
		return r
	}, s)
	sub := dateTimeRE.FindStringSubmatch(s)
	if sub == nil {
		if zonelessRE.MatchString(s) {
			return time.Time{}, fmt.Errorf("%s has no time zone; add Z or an offset such as +01:00", quote(orig))
		}
		return time.Time{}, fmt.Errorf(`must be an RFC 3339 date-time with a zone (such as 2030-01-09T14:30:00Z), "now" or "none", not %s`, quote(orig))
	}
	if sub[1] != "" { // time.Parse does not hold offsets to RFC 3339's 00:00–23:59
		h, _ := strconv.Atoi(sub[1])
		m, _ := strconv.Atoi(sub[2])
		if h > 23 || m > 59 {
			return time.Time{}, fmt.Errorf("%s has a zone offset out of range", quote(orig))
		}
	}
	layout := layoutSeconds
	if s[len("2006-01-02T15:04")] != ':' {
		layout = layoutMinutes
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not a valid date-time: %s", quote(orig), parseReason(err))
	}
	return t.UTC(), nil
}

// parseReason extracts the reason from a time.ParseError without repeating
// the input, which the caller has already quoted.
func parseReason(err error) string {
	var pe *time.ParseError
	if errors.As(err, &pe) && pe.Message != "" {
		return strings.TrimPrefix(pe.Message, ": ")
	}
	return "out of range"
}

// checkCombination applies the rules that concern several properties at
// once (see the package doc).
func checkCombination(u Update, timeKey string) error {
	if u.Action == nil {
		return nil
	}
	a := *u.Action
	if a == ActionIdle {
		if u.UpdateTime != nil {
			return errorf(timeKey, `swupdateaction "idle" cannot be scheduled; send updatetime alone to reschedule the pending action, or swupdateaction "idle" alone to cancel it`)
		}
		return nil
	}
	if u.CancelTime {
		return errorf(timeKey, `updatetime "none" cancels the schedule and cannot go with swupdateaction %q`, a)
	}
	if u.UpdateTime == nil {
		return errorf(PropUpdateTime, `swupdateaction %q needs an updatetime: an RFC 3339 date-time or "now"`, a)
	}
	return nil
}
