package ocf

import (
	"context"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// BenchmarkGetRoundTrip measures one CON GET of a small resource (/oic/p)
// over loopback with a go-coap client: parse, Serve, encode, reply.
func BenchmarkGetRoundTrip(b *testing.B) {
	cfg := testConfig(b)
	cfg.Logger = nil // the default discards; per-request debug logging would dominate
	_, addr := startServer(b, cfg)
	cc := dial(b, addr, true)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := cc.Get(ctx, HrefPlatform)
		if err != nil {
			b.Fatal(err)
		}
		if resp.Code() != codes.Content {
			b.Fatalf("code %v", resp.Code())
		}
		cc.ReleaseMessage(resp)
	}
}
