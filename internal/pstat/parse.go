package pstat

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// readOnly is every pstat property a client may read but not write here.
var readOnly = map[string]bool{
	PropDOS:        true,
	PropIsOp:       true,
	PropCM:         true,
	PropOM:         true,
	PropSM:         true,
	PropRownerUUID: true,
	PropRT:         true,
	PropIf:         true,
	PropName:       true,
	PropID:         true,
}

// ParseUpdate validates the CBOR body of an UPDATE (POST) to pstat and
// returns the tm it carries. Only tm, an unsigned integer, is writable; any
// problem is an *swu.Error naming the property. It does not judge the bits:
// ActionForTM does.
func ParseUpdate(body []byte) (tm uint64, err error) {
	if len(body) == 0 {
		return 0, &swu.Error{Message: `the UPDATE has no payload; send {"tm": bits}`}
	}
	if len(body) > ocf.MaxBodySize {
		return 0, &swu.Error{Message: fmt.Sprintf("the payload is %d bytes; at most %d are accepted", len(body), ocf.MaxBodySize)}
	}
	m, err := ocf.DecodeMap(body)
	switch {
	case errors.Is(err, ocf.ErrNotMap):
		return 0, &swu.Error{Message: "the payload must be a CBOR map with text keys"}
	case err != nil:
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return 0, &swu.Error{Message: "the payload is not valid CBOR: " + err.Error()}
	case len(m) == 0:
		return 0, &swu.Error{Message: `the UPDATE is empty; send {"tm": bits}`}
	}
	// Sorted, so the reply does not depend on map iteration order.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case k == PropTM:
		case readOnly[k]:
			return 0, &swu.Error{Property: k, Message: k + " is read-only on this device; only tm can be written"}
		default:
			return 0, &swu.Error{Property: k, Message: "unknown property; only tm can be written"}
		}
	}
	switch v := m[PropTM].(type) {
	case uint64:
		return v, nil
	case int64:
		return 0, &swu.Error{Property: PropTM, Message: "tm must be an unsigned integer, not a negative one"}
	default:
		return 0, &swu.Error{Property: PropTM, Message: "tm must be an unsigned integer, not " + swu.TypeName(v)}
	}
}
