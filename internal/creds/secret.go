package creds

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Secret is key material. However it is printed, logged or marshalled, it
// shows as "[redacted]"; only its bytes are the key.
type Secret []byte

// String hides the key.
func (Secret) String() string { return redacted }

// GoString hides the key from %#v.
func (Secret) GoString() string { return redacted }

// Format hides the key from every verb, %x and %v included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue hides the key from log/slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON hides the key from encoding/json.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// PSK is a pre-shared key and the identity that names it.
type PSK struct {
	Identity string
	Key      Secret
}
