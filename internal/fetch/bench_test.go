package fetch

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// newRawCoAPServer answers Block2 GETs for content straight from a UDP
// socket and returns the URL. It exists for the memory figures: a go-coap
// server keeps every response it sent for EXCHANGE_LIFETIME (247 s) to
// answer retransmissions, which would count a whole package's worth of
// server memory against the client.
func newRawCoAPServer(tb testing.TB, content pattern) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in, out := make([]byte, 2048), make([]byte, 2048)
		payload, optBuf := make([]byte, 1024), make([]byte, 16)
		for {
			n, addr, err := pc.ReadFrom(in)
			if err != nil {
				return
			}
			req := message.Message{Options: make(message.Options, 0, 16)}
			if _, err := coder.DefaultCoder.Decode(in[:n], &req); err != nil || req.Type != message.Confirmable {
				continue
			}
			szx, num := blockwise.SZX1024, int64(0)
			if v, err := req.Options.GetUint32(message.Block2); err == nil {
				szx, num, _, _ = blockwise.DecodeBlockOption(v)
			}
			resp := message.Message{Token: req.Token, MessageID: req.MessageID, Type: message.Acknowledgement, Code: codes.BadOption}
			if start := num * szx.Size(); start < content.size {
				end := min(start+szx.Size(), content.size)
				resp.Payload = payload[:end-start]
				_, _ = content.ReadAt(resp.Payload, start)
				v, _ := blockwise.EncodeBlockOption(szx, num, end < content.size)
				resp.Code = codes.Content
				resp.Options, _, _ = resp.Options.SetUint32(optBuf[:8], message.Block2, v)
				resp.Options, _, _ = resp.Options.SetUint32(optBuf[8:], message.Size2, uint32(content.size))
			}
			if m, err := coder.DefaultCoder.Encode(resp, out); err == nil {
				_, _ = pc.WriteTo(out[:m], addr)
			}
		}
	}()
	tb.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return "coap://" + pc.LocalAddr().String() + "/pkg"
}

// heapPeak samples the heap while a download runs. HeapAlloc includes
// garbage not yet collected, so it overstates what is live; a download
// that buffered the package would still show the whole package.
type heapPeak struct {
	base, peak uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapPeak{base: ms.HeapAlloc, peak: ms.HeapAlloc, stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapAlloc)
		}
	}()
	return h
}

// end stops sampling and returns the peak growth over the baseline in MiB.
func (h *heapPeak) end() (growthMiB, peakMiB float64) {
	close(h.stop)
	h.wg.Wait()
	return float64(h.peak-h.base) / (1 << 20), float64(h.peak) / (1 << 20)
}

func benchDownload(b *testing.B, url string, d *Downloader, content pattern) {
	want := content.expect(b)
	dir := b.TempDir()
	b.SetBytes(content.size)
	b.ReportAllocs()
	h := startHeapPeak()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(dir, fmt.Sprint(i))
		if err := d.Download(context.Background(), url, dst, want, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.Remove(dst)
		b.StartTimer()
	}
	b.StopTimer()
	growth, peak := h.end()
	b.ReportMetric(peak, "peak-heap-MiB")
	b.ReportMetric(growth, "heap-growth-MiB")
}

// The server in these benchmarks generates the content on the fly, so the
// heap figures are the client's and the server's working memory, not the
// package.
const benchSize = 64 << 20

func BenchmarkDownloadHTTPS(b *testing.B) {
	content := pattern{size: benchSize, seed: 20}
	srv := newHTTPServer(b, content, nil)
	cfg := fastConfig()
	trustServer(&cfg, srv.Server)
	benchDownload(b, srv.url(), newDownloader(b, cfg), content)
}

func BenchmarkDownloadCoAP(b *testing.B) {
	content := pattern{size: benchSize, seed: 21}
	cfg := coapConfig()
	cfg.Timeout = 5 * time.Second
	benchDownload(b, newRawCoAPServer(b, content), newDownloader(b, cfg), content)
}

// TestDownloadConstantMemory bounds the heap growth while downloading a
// package much larger than the bound, over both protocols.
func TestDownloadConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads tens of MiB")
	}
	tests := []struct {
		name     string
		size     int64
		boundMiB float64
		url      func(t *testing.T, content pattern, cfg *Config) string
	}{
		{"https", 48 << 20, 8, func(t *testing.T, content pattern, cfg *Config) string {
			srv := newHTTPServer(t, content, nil)
			trustServer(cfg, srv.Server)
			return srv.url()
		}},
		{"coap", 32 << 20, 8, func(t *testing.T, content pattern, cfg *Config) string {
			cfg.AllowInsecure = true
			return newRawCoAPServer(t, content)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := pattern{size: tt.size, seed: 22}
			cfg := fastConfig()
			cfg.Timeout = 10 * time.Second
			url := tt.url(t, content, &cfg)
			d := newDownloader(t, cfg)
			want := content.expect(t)
			h := startHeapPeak()
			err := d.Download(context.Background(), url, dstIn(t), want, nil)
			growth, peak := h.end()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d MiB over %s: heap peak %.1f MiB, growth %.1f MiB", tt.size>>20, tt.name, peak, growth)
			if growth > tt.boundMiB {
				t.Errorf("heap grew by %.1f MiB downloading %d MiB, bound %.0f MiB", growth, tt.size>>20, tt.boundMiB)
			}
		})
	}
}
