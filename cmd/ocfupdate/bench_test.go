package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// BenchmarkRollout200 rolls a 4 MiB package out to 200 in-process devices
// on loopback (real TUF check, HTTPS download, verification and slots
// install), one device at a time and 32 at once. Each iteration gets a
// fresh fleet, set up outside the timer. Run it with
//
//	go test -run '^$' -bench Rollout200 -benchtime 1x ./cmd/ocfupdate/
//
// The figures are in docs/benchmarks.md.
func BenchmarkRollout200(b *testing.B) {
	const devices, size = 200, 4 << 20
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				f, err := startFleet(b.Context(), fleetConfig{Dir: b.TempDir(), Devices: devices, Model: "bench",
					Versions: []string{"1.0.0", "1.1.0"}, PackageSize: size})
				if err != nil {
					b.Fatal(err)
				}
				cfg := client.RolloutConfig{PURL: f.purl, Version: "1.1.0", Concurrency: conc,
					Waves: []client.WaveSize{{N: 1}, {N: 10, Percent: true}, {N: 50, Percent: true}, {N: 100, Percent: true}}}
				b.StartTimer()
				start := time.Now()
				rep, err := client.Rollout(b.Context(), cfg, f.endpoints)
				elapsed := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if !rep.Complete() || rep.Counts.Succeeded != devices {
					for _, d := range rep.Devices {
						if d.Outcome == client.OutcomeFailed {
							b.Logf("%s: %s %s", d.Endpoint, d.Error, d.Detail)
						}
					}
					b.Fatalf("rollout incomplete: %+v", rep.Counts)
				}
				b.ReportMetric(float64(devices)/elapsed.Seconds(), "devices/s")
				b.ReportMetric(float64(devices)*size/(1<<20)/elapsed.Seconds(), "MiB/s")
				if err := f.stop(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
