package agent

import (
	"context"
	"testing"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// BenchmarkGetSWU measures GET /oc/swu round trips on loopback through the
// whole stack: client library, CoAP, the agent's snapshot and the CBOR
// representation. Reported in docs/benchmarks.md.
func BenchmarkGetSWU(b *testing.B) {
	h := startBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.conn.Get(ctx, swu.DefaultHref); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGetSWUParallel runs 8 clients at once against one agent.
func BenchmarkGetSWUParallel(b *testing.B) {
	h := startBench(b)
	b.ReportAllocs()
	b.SetParallelism(4) // 4 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := client.Dial(context.Background(), h.ep)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			if _, err := c.Get(context.Background(), swu.DefaultHref); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
