package swu

import (
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// Error is a refused UPDATE: invalid content (from ParseUpdate) or a request
// that is impossible in the current state (from a Controller). The resource
// answers it with 4.00 Bad Request and the diagnostic
// {"error": Message, "property": Property}.
type Error struct {
	Property string // the property at fault; empty when the error is about the whole body
	Message  string // one human sentence, sent to the client as is
}

func (e *Error) Error() string {
	if e.Property == "" {
		return e.Message
	}
	return "property " + e.Property + ": " + e.Message
}

// errorf builds an *Error for property p.
func errorf(p, format string, args ...any) *Error {
	return &Error{Property: p, Message: fmt.Sprintf(format, args...)}
}

// TypeName names the CBOR type a decoded value came from, for diagnostics
// such as "purl must be a text string, not an integer".
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case uint64, int64, big.Int, *big.Int:
		return "an integer"
	case float32, float64:
		return "a float"
	case string:
		return "a text string"
	case []byte:
		return "a byte string"
	case []any:
		return "an array"
	case map[any]any, map[string]any:
		return "a map"
	default:
		return "an unsupported CBOR value"
	}
}

// maxQuoted bounds how much of a client's value is echoed in a diagnostic,
// so an error reply stays small whatever was sent.
const maxQuoted = 40

// quote renders a client-supplied string for a diagnostic: Go-quoted (so
// control characters are visible) and truncated on a rune boundary.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}

// joinQuoted lists values as "a", "b" or "c" (with conj "or").
func joinQuoted(vals []string, conj string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = `"` + v + `"`
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
}
