package agent

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/schedule"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stepCall is one call of a step, held until the test answers it.
type stepCall struct {
	name     string // check, fetch, install, confirm
	req      step.CheckRequest
	target   step.Target
	path     string
	progress step.ProgressFunc
	reply    chan stepReply
}

type stepReply struct {
	target step.Target
	found  bool
	path   string
	err    error
}

func (c *stepCall) answer(r stepReply) { c.reply <- r }

// fakeSteps implements Checker, Fetcher and Installer; every call waits for
// the test to answer it, so a test can stop the agent in any state.
type fakeSteps struct {
	calls    chan *stepCall
	discards atomic.Int32
}

func newFakeSteps() *fakeSteps { return &fakeSteps{calls: make(chan *stepCall, 16)} }

func (f *fakeSteps) call(ctx context.Context, c *stepCall) (stepReply, error) {
	c.reply = make(chan stepReply, 1)
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return stepReply{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r, r.err
	case <-ctx.Done():
		return stepReply{}, ctx.Err()
	}
}

func (f *fakeSteps) Check(ctx context.Context, req step.CheckRequest) (step.Target, bool, error) {
	r, err := f.call(ctx, &stepCall{name: "check", req: req})
	return r.target, r.found, err
}

func (f *fakeSteps) Fetch(ctx context.Context, req step.CheckRequest, t step.Target, p step.ProgressFunc) (step.Staged, error) {
	r, err := f.call(ctx, &stepCall{name: "fetch", req: req, target: t, progress: p})
	if r.target == (step.Target{}) {
		r.target = t
	}
	if r.target == (step.Target{}) {
		r.target = target11 // isvv without a check: the fetcher finds the newest
	}
	return step.Staged{Target: r.target, Path: r.path}, err
}

func (f *fakeSteps) Discard() error { f.discards.Add(1); return nil }

func (f *fakeSteps) Install(ctx context.Context, path string, t step.Target, p step.ProgressFunc) error {
	_, err := f.call(ctx, &stepCall{name: "install", path: path, target: t, progress: p})
	return err
}

func (f *fakeSteps) Confirm(ctx context.Context, t step.Target) error {
	_, err := f.call(ctx, &stepCall{name: "confirm", target: t})
	return err
}

// expect waits for the next step call and checks its name.
func (f *fakeSteps) expect(t *testing.T, name string) *stepCall {
	t.Helper()
	select {
	case c := <-f.calls:
		if c.name != name {
			t.Fatalf("step %s called, want %s", c.name, name)
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("step %s not called", name)
		return nil
	}
}

// none checks that no step is called for a moment.
func (f *fakeSteps) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.calls:
		t.Fatalf("unexpected step %s", c.name)
	case <-time.After(100 * time.Millisecond):
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

var target11 = step.Target{Version: "1.1.0", Name: "model-1/1.1.0.tar.gz", Length: 1234}

// harness is a running agent with fake steps and a connected client.
type harness struct {
	t     testing.TB
	dir   string
	steps *fakeSteps
	clock schedule.Clock
	conn  *client.Conn
	ep    string
	stop  func()
}

type harnessOpt func(*Config)

func withClock(c schedule.Clock) harnessOpt { return func(cfg *Config) { cfg.Clock = c } }
func withVendorURL(u string) harnessOpt     { return func(cfg *Config) { cfg.Device.VendorURL = u } }
func withDeviceID(id string) harnessOpt     { return func(cfg *Config) { cfg.DeviceID = id } }

// start runs an agent on dir (a new temp dir when empty).
func start(t testing.TB, dir string, steps *fakeSteps, opts ...harnessOpt) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if steps == nil {
		steps = newFakeSteps()
	}
	eps := make(chan []string, 1)
	cfg := Config{
		DataDir:  dir,
		CoAPAddr: "127.0.0.1:0",
		Device: Device{Name: "dev", Model: "model-1", SoftwareVersion: "1.0.0", Manufacturer: "ACME",
			ManufacturingDate: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		Checker: steps, Fetcher: steps, Installer: steps,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: logLevel(t)})),
		Ready:  func(e []string) { eps <- e },
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var ep string
	select {
	case e := <-eps:
		ep = e[0]
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready")
	}
	conn, err := client.Dial(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, steps: steps, clock: cfg.Clock, conn: conn, ep: ep}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			conn.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func (h *harness) status() client.Status {
	h.t.Helper()
	s, err := h.conn.Status(ctx(h.t), swu.DefaultHref)
	if err != nil {
		h.t.Fatalf("GET: %v", err)
	}
	return s
}

// waitState polls until the resource is in state s.
func (h *harness) waitState(s swu.State) client.Status {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.status()
		if st.State == string(s) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("state %s, want %s (detail %q)", st.State, s, st.Detail)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) post(body map[string]any) (client.Response, error) {
	h.t.Helper()
	return h.conn.Post(ctx(h.t), swu.DefaultHref, body)
}

func (h *harness) mustPost(body map[string]any) {
	h.t.Helper()
	if _, err := h.post(body); err != nil {
		h.t.Fatalf("POST %v: %v", body, err)
	}
}

// logLevel keeps benchmarks quiet; tests log everything (shown on failure).
func logLevel(t testing.TB) slog.Level {
	if _, ok := t.(*testing.B); ok {
		return slog.LevelError
	}
	return slog.LevelDebug
}

func startBench(b *testing.B) *harness { return start(b, "", nil) }
