package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
	udpserver "github.com/plgd-dev/go-coap/v3/udp/server"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// coapServer serves content at /pkg with Block2 done by hand, the way a
// constrained package server would, and misbehaves on request.
type coapServer struct {
	addr string

	mu      sync.Mutex
	content pattern
	etag    []byte
	size2   int64 // announced Size2 (-1: none; 0: the content size)
	maxSZX  blockwise.SZX
	// answer, when set, may replace the answer to block num: it returns
	// true after writing its own response (or to send none). It runs with
	// mu held and may change the fields below.
	answer func(num int64, w mux.ResponseWriter) bool
	// endless keeps saying "more" past the end of the content.
	endless bool
	noBlock bool // answer without Block2, whole content in one message

	blocks atomic.Int64 // block requests answered with content
	served atomic.Int64 // payload bytes sent
	nums   []int64      // block numbers requested
}

// newCoAPServer serves content over plain CoAP on a loopback port until
// the test ends.
func newCoAPServer(t testing.TB, content pattern) *coapServer {
	t.Helper()
	return startCoAPServer(t, content, listenUDP)
}

// serverOption is an option that both the UDP and the DTLS server take.
type serverOption interface {
	udpserver.Option
	dtlsserver.Option
}

// optionsAs converts opts to the option type of one transport's server:
// udpserver.Option or dtlsserver.Option, which every serverOption is.
func optionsAs[O any](opts []serverOption) []O {
	out := make([]O, 0, len(opts))
	for _, o := range opts {
		out = append(out, any(o).(O))
	}
	return out
}

// coapTransport opens a loopback listener of one transport and builds the
// server for it from opts.
type coapTransport func(t testing.TB, opts []serverOption) coapListener

// coapListener is a listener with its server, not yet serving.
type coapListener struct {
	l     io.Closer // closed once the server has stopped
	addr  string
	serve func() error // returns after stop
	stop  func()
}

// startCoAPServer serves content over the transport that listen opens
// until the test ends.
func startCoAPServer(t testing.TB, content pattern, listen coapTransport) *coapServer {
	t.Helper()
	s, r := newCoAPHandler(content)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // runs last, after the server stopped
	cl := listen(t, []serverOption{
		options.WithMux(r),
		options.WithBlockwise(false, blockwise.SZX1024, time.Second),
		options.WithErrors(func(error) {}),
		options.WithPeriodicRunner(periodic.New(stop, 100*time.Millisecond)),
	})
	s.addr = cl.addr
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cl.serve()
	}()
	t.Cleanup(func() {
		cl.stop()
		<-done
		_ = cl.l.Close()
	})
	return s
}

// listenUDP is the plain CoAP transport.
func listenUDP(t testing.TB, opts []serverOption) coapListener {
	t.Helper()
	l, err := coapnet.NewListenUDP("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := udp.NewServer(optionsAs[udpserver.Option](opts)...)
	return coapListener{l: l, addr: l.LocalAddr().String(), serve: func() error { return srv.Serve(l) }, stop: srv.Stop}
}

func newCoAPHandler(content pattern) (*coapServer, *mux.Router) {
	s := &coapServer{content: content, etag: []byte("v1"), maxSZX: blockwise.SZX1024}
	r := mux.NewRouter()
	_ = r.Handle("/pkg", mux.HandlerFunc(s.serveCOAP))
	return s, r
}

func (s *coapServer) url(scheme string) string { return scheme + "://" + s.addr + "/pkg" }

func (s *coapServer) requested() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.nums...)
}

func (s *coapServer) set(f func(s *coapServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *coapServer) serveCOAP(w mux.ResponseWriter, r *mux.Message) {
	szx, num := blockwise.SZX1024, int64(0)
	if v, err := r.GetOptionUint32(message.Block2); err == nil {
		var derr error
		if szx, num, _, derr = blockwise.DecodeBlockOption(v); derr != nil {
			_ = w.SetResponse(codes.BadOption, message.TextPlain, nil)
			return
		}
	}
	s.mu.Lock()
	s.nums = append(s.nums, num)
	if s.answer != nil && s.answer(num, w) {
		s.mu.Unlock()
		return
	}
	content, etag, size2, endless, noBlock := s.content, s.etag, s.size2, s.endless, s.noBlock
	szx = min(szx, s.maxSZX)
	s.mu.Unlock()

	size := szx.Size()
	start, end := num*size, min((num+1)*size, content.size)
	more := end < content.size
	if endless {
		end, more = start+size, true
	}
	if noBlock {
		start, end, more = 0, content.size, false
	}
	if start > end || (start == end && start > 0) {
		_ = w.SetResponse(codes.BadOption, message.TextPlain, nil)
		return
	}
	payload := make([]byte, end-start)
	for i := range payload {
		payload[i] = content.at(start + int64(i))
	}
	_ = w.SetResponse(codes.Content, message.AppOctets, bytes.NewReader(payload))
	if !noBlock {
		v, _ := blockwise.EncodeBlockOption(szx, num, more)
		w.Message().SetOptionUint32(message.Block2, v)
	}
	if etag != nil {
		w.Message().SetOptionBytes(message.ETag, etag)
	}
	if size2 >= 0 {
		if size2 == 0 {
			size2 = content.size
		}
		w.Message().SetOptionUint32(message.Size2, uint32(size2))
	}
	s.blocks.Add(1)
	s.served.Add(int64(len(payload)))
}

// coapConfig is fastConfig for CoAP: a short per-block timeout so a
// dropped block fails quickly.
func coapConfig() Config {
	cfg := fastConfig()
	cfg.AllowInsecure = true
	cfg.Timeout = 300 * time.Millisecond
	cfg.MaxRetries = 2
	return cfg
}

func TestDownloadCoAP(t *testing.T) {
	const size = 10*1024 + 100 // 11 blocks of 1024, the last one short
	content := pattern{size: size, seed: 7}
	v2 := pattern{size: size, seed: 8}

	tests := []struct {
		name       string
		setup      func(s *coapServer)
		prepare    func(t *testing.T, dst string)
		want       swu.Result
		wantBlocks int64 // blocks answered with content
		wantFirst  int64 // first block number requested
		wantReqs   int   // number of block requests, when not 0
		expect     pattern
		wantPart   bool
	}{
		{name: "success", want: swu.ResultSuccess, wantBlocks: 11},
		{
			name:  "exact multiple of the block size",
			setup: func(s *coapServer) { s.content = pattern{size: 8192, seed: 7} },
			want:  swu.ResultSuccess, wantBlocks: 8, expect: pattern{size: 8192, seed: 7},
		},
		{
			name:  "no ETag, no Size2",
			setup: func(s *coapServer) { s.etag, s.size2 = nil, -1 },
			want:  swu.ResultSuccess, wantBlocks: 11,
		},
		{
			name:  "server picks smaller blocks",
			setup: func(s *coapServer) { s.maxSZX = blockwise.SZX256 },
			want:  swu.ResultSuccess, wantBlocks: 41,
		},
		{
			name: "4.04 is 404, not retried",
			setup: func(s *coapServer) {
				s.answer = func(_ int64, w mux.ResponseWriter) bool {
					_ = w.SetResponse(codes.NotFound, message.TextPlain, nil)
					return true
				}
			},
			want: 404, wantReqs: 1,
		},
		{
			name: "5.03 is retried, then 503",
			setup: func(s *coapServer) {
				s.answer = func(_ int64, w mux.ResponseWriter) bool {
					_ = w.SetResponse(codes.ServiceUnavailable, message.TextPlain, nil)
					return true
				}
			},
			want: 503, wantReqs: 3, // 1 + MaxRetries
		},
		{
			name: "5.03 once mid-transfer, then success",
			setup: func(s *coapServer) {
				var once atomic.Bool
				s.answer = func(num int64, w mux.ResponseWriter) bool {
					if num == 5 && once.CompareAndSwap(false, true) {
						_ = w.SetResponse(codes.ServiceUnavailable, message.TextPlain, nil)
						return true
					}
					return false
				}
			},
			want: swu.ResultSuccess, wantBlocks: 11,
		},
		{
			name: "ETag changes mid-transfer: restart from block 0",
			setup: func(s *coapServer) {
				s.answer = func(num int64, _ mux.ResponseWriter) bool {
					if num == 4 {
						s.content, s.etag = v2, []byte("v2") // the server publishes a new file
					}
					return false
				}
			},
			want: swu.ResultSuccess, wantBlocks: 4 + 1 + 11, expect: v2,
		},
		{
			name: "ETag changes on every block",
			setup: func(s *coapServer) {
				var n atomic.Int64
				s.answer = func(_ int64, _ mux.ResponseWriter) bool {
					s.etag = fmt.Appendf(nil, "e%d", n.Add(1))
					return false
				}
			},
			want: swu.ResultValidation, wantReqs: 2 + maxRestarts, // block 0, block 1, then block 0 again and again
		},
		{
			name:  "Size2 differs from the metadata",
			setup: func(s *coapServer) { s.size2 = size + 1 },
			want:  swu.ResultValidation, wantBlocks: 1,
		},
		{
			name:  "endless blocks are cut off",
			setup: func(s *coapServer) { s.endless, s.size2 = true, -1 },
			want:  swu.ResultValidation, wantBlocks: 11,
		},
		{
			name:  "last block too early",
			setup: func(s *coapServer) { s.content, s.size2 = pattern{size: size - 500, seed: 7}, -1 },
			want:  swu.ResultValidation, wantBlocks: 10,
		},
		{
			name: "resume from a .part that ends mid-block",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes()[:1500])
			},
			want: swu.ResultSuccess, wantBlocks: 10, wantFirst: 1,
		},
		{
			name: "complete .part: no request",
			prepare: func(t *testing.T, dst string) {
				writePart(t, dst, content.bytes())
			},
			want: swu.ResultSuccess, wantBlocks: 0, wantFirst: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCoAPServer(t, content)
			if tt.setup != nil {
				srv.set(tt.setup)
			}
			d := newDownloader(t, coapConfig())
			dst := dstIn(t)
			if tt.prepare != nil {
				tt.prepare(t, dst)
			}
			expect := content
			if tt.expect.size != 0 {
				expect = tt.expect
			}
			err := d.Download(context.Background(), srv.url("coap"), dst, expect.expect(t), nil)
			if got := steptest.ResultOf(err); got != tt.want {
				t.Fatalf("result %d (%v), want %d", got, err, tt.want)
			}
			if n := len(srv.requested()); tt.wantReqs != 0 && n != tt.wantReqs {
				t.Errorf("%d block requests, want %d", n, tt.wantReqs)
			}
			if err != nil {
				var se *step.Error
				if !errors.As(err, &se) || se.Detail == "" {
					t.Errorf("error %v is not a *step.Error with a detail", err)
				}
				if exists(t, dst) || exists(t, dst+PartSuffix) != tt.wantPart {
					t.Errorf("after failure: dst exists %v, .part exists %v (want %v)", exists(t, dst), exists(t, dst+PartSuffix), tt.wantPart)
				}
				return
			}
			checkFile(t, dst, expect)
			if got := srv.blocks.Load(); got != tt.wantBlocks {
				t.Errorf("%d blocks served, want %d", got, tt.wantBlocks)
			}
			nums := srv.requested()
			if tt.wantFirst >= 0 && (len(nums) == 0 || nums[0] != tt.wantFirst) {
				t.Errorf("requested blocks %v, want the first to be %d", nums, tt.wantFirst)
			}
			if tt.wantFirst < 0 && len(nums) != 0 {
				t.Errorf("requested blocks %v, want none", nums)
			}
		})
	}
}

// TestDownloadCoAPResumeAfterDrop interrupts a CoAP download (the server
// stops answering after block K) and checks that the next Download call
// continues from the .part with block K.
func TestDownloadCoAPResumeAfterDrop(t *testing.T) {
	const size, k = 20 * 1024, 7
	content := pattern{size: size, seed: 9}
	srv := newCoAPServer(t, content)
	var dropping atomic.Bool
	dropping.Store(true)
	srv.set(func(s *coapServer) {
		s.answer = func(num int64, _ mux.ResponseWriter) bool {
			return num >= k && dropping.Load() // no response: the client times out
		}
	})
	d := newDownloader(t, coapConfig())
	dst := dstIn(t)

	err := d.Download(context.Background(), srv.url("coap"), dst, content.expect(t), nil)
	if got := steptest.ResultOf(err); got != swu.ResultConnectionLost || !errors.Is(err, ErrStalled) {
		t.Fatalf("interrupted run: result %d (%v), want 4 (stalled)", got, err)
	}
	if got := fileSize(t, dst+PartSuffix); got != k*1024 {
		t.Fatalf(".part has %d bytes, want %d", got, k*1024)
	}

	dropping.Store(false)
	before := srv.blocks.Load()
	srv.set(func(s *coapServer) { s.nums = nil })
	if err := d.Download(context.Background(), srv.url("coap"), dst, content.expect(t), nil); err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	checkFile(t, dst, content)
	if nums := srv.requested(); len(nums) == 0 || nums[0] != k {
		t.Errorf("resumed run requested %v, want to start at block %d", nums, k)
	}
	if got := srv.blocks.Load() - before; got != size/1024-k {
		t.Errorf("resumed run fetched %d blocks, want %d", got, size/1024-k)
	}
}

func TestDownloadCoAPUnreachable(t *testing.T) {
	// A port that was just freed: the kernel answers ICMP port unreachable.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close()
	d := newDownloader(t, coapConfig())
	dst := dstIn(t)
	err = d.Download(context.Background(), "coap://"+addr+"/pkg", dst, pattern{size: 100}.expect(t), nil)
	if got := steptest.ResultOf(err); got != swu.ResultConnectionLost {
		t.Fatalf("result %d (%v), want 4", got, err)
	}
}

// TestDownloadCoAPSInjectedDial checks that a coaps URL goes through
// Config.DialCoAPS with the options the Downloader needs. The injected
// dialer speaks plain UDP: what matters here is the wiring.
func TestDownloadCoAPSInjectedDial(t *testing.T) {
	content := pattern{size: 3000, seed: 10}
	srv := newCoAPServer(t, content)
	var dials atomic.Int64
	cfg := coapConfig()
	cfg.AllowInsecure = false
	cfg.DialCoAPS = func(_ context.Context, addr string, opts ...udp.Option) (*udpclient.Conn, error) {
		dials.Add(1)
		return udp.Dial(addr, opts...)
	}
	d := newDownloader(t, cfg)
	dst := dstIn(t)
	if err := d.Download(context.Background(), srv.url("coaps"), dst, content.expect(t), nil); err != nil {
		t.Fatal(err)
	}
	checkFile(t, dst, content)
	if dials.Load() != 1 {
		t.Errorf("%d dials, want 1", dials.Load())
	}
}

func TestDownloadCoAPCancel(t *testing.T) {
	const size = 8 * 1024
	content := pattern{size: size, seed: 11}
	srv := newCoAPServer(t, content)
	cfg := coapConfig()
	cfg.Timeout = time.Hour // only cancellation can end the wait for block 3
	srv.set(func(s *coapServer) {
		s.answer = func(num int64, _ mux.ResponseWriter) bool { return num == 3 }
	})
	d := newDownloader(t, cfg)
	dst := dstIn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := d.Download(ctx, srv.url("coap"), dst, content.expect(t), func(done, _ int64) {
		if done == 3*1024 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if got := fileSize(t, dst+PartSuffix); got != 3*1024 {
		t.Fatalf(".part has %d bytes, want %d", got, 3*1024)
	}
}

func TestGetCoAP(t *testing.T) {
	tests := []struct {
		name  string
		size  int64
		setup func(s *coapServer)
		max   int64
		want  swu.Result
	}{
		{name: "single message without Block2", size: 300, setup: func(s *coapServer) { s.noBlock = true }, max: 1000, want: swu.ResultSuccess},
		{name: "several blocks", size: 5000, max: 5000, want: swu.ResultSuccess},
		{name: "longer than allowed (Size2)", size: 5000, max: 4999, want: swu.ResultValidation},
		{name: "longer than allowed (no Size2)", size: 5000, setup: func(s *coapServer) { s.size2 = -1 }, max: 4999, want: swu.ResultValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := pattern{size: tt.size, seed: 12}
			srv := newCoAPServer(t, content)
			if tt.setup != nil {
				srv.set(tt.setup)
			}
			d := newDownloader(t, coapConfig())
			got, err := d.Get(context.Background(), srv.url("coap"), tt.max)
			if r := steptest.ResultOf(err); r != tt.want {
				t.Fatalf("result %d (%v), want %d", r, err, tt.want)
			}
			if err == nil && !bytes.Equal(got, content.bytes()) {
				t.Fatalf("got %d bytes, not the content", len(got))
			}
		})
	}
}
