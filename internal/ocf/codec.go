package ocf

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Content formats and OCF CoAP options (OCF Core 12.2).
const (
	ContentFormatCBOR    = 60    // application/cbor, from plain CoAP clients
	ContentFormatOCFCBOR = 10000 // application/vnd.ocf+cbor

	OptionAcceptVersion  = 2049 // OCF-Accept-Content-Format-Version
	OptionContentVersion = 2053 // OCF-Content-Format-Version
	Version100           = 2048 // OCF 1.0.0 encoded as the options' value
)

// Limits on what a peer may send us. Our payloads are flat maps of short
// strings; anything deeper or longer is hostile or broken.
const (
	MaxNesting  = 8
	MaxElements = 256
	MaxPairs    = 64
	MaxBodySize = 16 << 10
)

var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:   MaxNesting,
		MaxArrayElements:  MaxElements,
		MaxMapPairs:       MaxPairs,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		DefaultMapType:    nil,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err) // static options: a bug, not input
	}
	return dm
}()

var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// ErrNotMap is returned by DecodeMap for a payload that is valid CBOR but not
// a map with text keys.
var ErrNotMap = errors.New("payload is not a CBOR map with text keys")

// Decode decodes CBOR data into v with the limits above. Unknown struct
// fields are an error, so a typed decode also rejects unknown properties.
func Decode(data []byte, v any) error {
	if len(data) > MaxBodySize {
		return fmt.Errorf("body of %d bytes exceeds %d", len(data), MaxBodySize)
	}
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// DecodeMap decodes a CBOR map with text keys, the shape of every OCF
// UPDATE payload. Values keep CBOR's natural Go types (uint64/int64 for
// integers, string, []any, map[any]any for nested maps).
func DecodeMap(data []byte) (map[string]any, error) {
	var raw any
	if err := Decode(data, &raw); err != nil {
		return nil, err
	}
	m, ok := raw.(map[any]any)
	if !ok {
		return nil, ErrNotMap
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		ks, ok := k.(string)
		if !ok {
			return nil, ErrNotMap
		}
		out[ks] = v
	}
	return out, nil
}

// Encode encodes v as deterministic CBOR (sorted map keys), so equal
// representations produce equal bytes and ETags.
func Encode(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}
