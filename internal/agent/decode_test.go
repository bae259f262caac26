package agent

import "github.com/fxamacker/cbor/v2"

func decodeLooseTest(b []byte, v any) error { return cbor.Unmarshal(b, v) }
