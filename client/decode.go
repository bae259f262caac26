package client

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Devices may add properties (vendor ones, newer spec versions): a client
// ignores what it does not know, unlike the device's own strict decoder.
var looseMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  16,
		MaxArrayElements: 4096,
		MaxMapPairs:      4096,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

func decodeLoose(b []byte, v any) error {
	if err := looseMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
