package ocf

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
)

func TestMain(m *testing.M) {
	// Inside a network namespace the test binary runs one multicast
	// scenario and exits (see multicast_test.go).
	if os.Getenv(netnsChildEnv) != "" {
		os.Exit(runNetnsChild())
	}
	goleak.VerifyTestMain(m)
}

const (
	testDI   = "4f1c8e0e-5c6b-4a2e-9a55-0d2a3e1b7c01"
	testPIID = "4f1c8e0e-5c6b-4a2e-9a55-0d2a3e1b7c02"
	testPI   = "4f1c8e0e-5c6b-4a2e-9a55-0d2a3e1b7c03"
)

func testConfig(t testing.TB) Config {
	return Config{
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Device: DeviceInfo{
			ID: testDI, Name: "test device", PIID: testPIID,
			Model: "model-1", SoftwareVersion: "1.0.0",
		},
		Platform: PlatformInfo{
			ID: testPI, ManufacturerName: "ACME", ModelNumber: "m1",
			ManufactureDate: "2024-05-01", FirmwareVersion: "fw1",
		},
	}
}

// testWriter sends log lines to t.Log, so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startServer starts a Server on 127.0.0.1:0 with the given resources and
// returns it with its address; Close runs at cleanup.
func startServer(t testing.TB, cfg Config, res ...Resource) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	for _, r := range res {
		if err := s.Handle(r); err != nil {
			t.Fatalf("Handle: %v", err)
		}
	}
	addr, err := s.Listen(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, addr.String()
}

// dial connects a go-coap client whose goroutines end at cleanup.
func dial(t testing.TB, addr string, blockwise bool) *udpClient.Conn {
	t.Helper()
	runner := coaprun.New(100 * time.Millisecond)
	cc, err := udp.Dial(addr,
		options.WithPeriodicRunner(runner.Func),
		options.WithBlockwise(blockwise, 6, 5*time.Second), // SZX 6: 1024-byte blocks
		options.WithErrors(func(err error) { t.Logf("client: %v", err) }),
	)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		<-cc.Done()
		runner.Stop()
	})
	return cc
}

// call describes one request of a table test.
type call struct {
	method codes.Code
	path   string // with "?query" if any
	cf     int    // request content format; -1 for none
	body   []byte
	opts   []message.Option
}

// do sends c over cc and returns the response.
func do(t testing.TB, cc *udpClient.Conn, c call) *pool.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := cc.AcquireMessage(ctx)
	defer cc.ReleaseMessage(req)
	req.SetCode(c.method)
	tok, err := message.GetToken()
	if err != nil {
		t.Fatal(err)
	}
	req.SetToken(tok)
	path, query, _ := strings.Cut(c.path, "?")
	if err := req.SetPath(path); err != nil {
		t.Fatal(err)
	}
	if query != "" {
		for _, q := range strings.Split(query, "&") {
			req.AddQuery(q)
		}
	}
	for _, o := range c.opts {
		req.AddOptionBytes(o.ID, o.Value)
	}
	if c.cf >= 0 && c.body != nil {
		req.SetContentFormat(message.MediaType(c.cf))
	}
	if c.body != nil {
		req.SetBody(bytes.NewReader(c.body))
	}
	resp, err := cc.Do(req)
	if err != nil {
		t.Fatalf("%v %s: %v", c.method, c.path, err)
	}
	t.Cleanup(func() { cc.ReleaseMessage(resp) })
	return resp
}

func uintOpt(id message.OptionID, v uint32) message.Option {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, v)
	return message.Option{ID: id, Value: buf[:n]}
}

// body reads a response payload.
func body(t testing.TB, m *pool.Message) []byte {
	t.Helper()
	if m.Body() == nil {
		return nil
	}
	b, err := m.ReadBody()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// diagnostic decodes an error reply's payload.
func diagnostic(t testing.TB, m *pool.Message) Diagnostic {
	t.Helper()
	var d Diagnostic
	if err := Decode(body(t, m), &d); err != nil {
		t.Fatalf("reply %v has no Diagnostic payload: %v", m.Code(), err)
	}
	return d
}

// eventually polls cond until it holds, failing after a generous bound. It
// waits for an effect; it asserts nothing about how long the effect takes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeResource is a hand-written Resource that records what it served.
type fakeResource struct {
	href       string
	types      []string
	ifaces     []string
	observable bool
	hidden     bool

	mu    sync.Mutex
	reqs  []Request
	serve func(req *Request) Response
}

func (f *fakeResource) Href() string         { return f.href }
func (f *fakeResource) Types() []string      { return f.types }
func (f *fakeResource) Interfaces() []string { return f.ifaces }
func (f *fakeResource) Observable() bool     { return f.observable }
func (f *fakeResource) Discoverable() bool   { return !f.hidden }

func (f *fakeResource) Serve(_ context.Context, req *Request) Response {
	f.mu.Lock()
	f.reqs = append(f.reqs, *req)
	serve := f.serve
	f.mu.Unlock()
	if serve == nil {
		return Response{Code: codes.Content, Body: map[string]any{"href": f.href}}
	}
	return serve(req)
}

func (f *fakeResource) requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

func (f *fakeResource) setServe(fn func(req *Request) Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serve = fn
}

func newFake(href string) *fakeResource {
	return &fakeResource{href: href, types: []string{"x.test"}, ifaces: []string{IfRW, IfBaseline}}
}

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
