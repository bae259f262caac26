package tufrepo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// benchTarget adds a package of size random bytes to a new repository and
// returns the repository and the package's fetch.Expect and target path.
func benchTarget(b *testing.B, size int) (dir, target string, want fetch.Expect) {
	b.Helper()
	dir = filepath.Join(b.TempDir(), "repo")
	if err := Init(dir, InitOptions{}); err != nil {
		b.Fatal(err)
	}
	file, _ := tufrepotest.PackageFile(b, "pkg.bin", size)
	tg, err := AddTarget(dir, file, "m", "1", AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	want = fetch.Expect{Length: tg.Length, Hashes: map[string][]byte{}}
	for alg, h := range tg.Hashes {
		if want.Hashes[alg], err = hex.DecodeString(h); err != nil {
			b.Fatal(err)
		}
	}
	return dir, "/targets/m/1/" + tg.Hashes["sha256"] + ".pkg.bin", want
}

// BenchmarkCoAPDownload16MiB fetches a whole 16 MiB package block by block
// (1024-byte Block2, confirmable, one request in flight per client) with
// the device's downloader, as a device does.
func BenchmarkCoAPDownload16MiB(b *testing.B) {
	dir, target, want := benchTarget(b, 16<<20)
	url := "coap://" + startCoAP(b, dir, ServeOptions{}) + target
	d, err := fetch.New(fetch.Config{AllowInsecure: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	benchDownload(b, d, url, want)
}

// BenchmarkCoAPsDownload16MiB is BenchmarkCoAPDownload16MiB over DTLS
// (PSK, AES-128-CCM-8), one session per download.
func BenchmarkCoAPsDownload16MiB(b *testing.B) {
	dir, target, want := benchTarget(b, 16<<20)
	url := "coaps://" + startCoAPs(b, dir, defaultSessionLimits).addr + target
	_, cliOpts := pskOptions(testPSK)
	d, err := fetch.New(fetch.Config{
		DialCoAPS: func(ctx context.Context, addr string, opts ...udp.Option) (*udpClient.Conn, error) {
			return coapsdial.DialOptions(ctx, addr, cliOpts, opts...)
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	benchDownload(b, d, url, want)
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// benchDownload downloads url with d from one client, and from four at
// once (MB/s is then the total).
func benchDownload(b *testing.B, d *fetch.Downloader, url string, want fetch.Expect) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			dst := b.TempDir()
			base := liveHeap()
			b.SetBytes(want.Length * int64(clients))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var wg sync.WaitGroup
				errs := make([]error, clients)
				for c := range clients {
					wg.Go(func() {
						errs[c] = d.Download(context.Background(), url, filepath.Join(dst, fmt.Sprint(i, "-", c)), want, nil)
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for c := range clients {
					_ = os.Remove(filepath.Join(dst, fmt.Sprint(i, "-", c)))
				}
				b.StartTimer()
			}
			// What the server still holds once the downloads are done.
			b.ReportMetric(float64(liveHeap()-base)/(1<<20), "retained-heap-MiB")
		})
	}
}
