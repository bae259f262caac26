package ocf

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// counter is an observable resource whose representation is {"n": n}.
type counter struct {
	*fakeResource
	n atomic.Uint64
}

func newCounter(href string) *counter {
	c := &counter{fakeResource: newFake(href)}
	c.observable = true
	c.serve = func(req *Request) Response {
		return Response{Body: map[string]any{"n": c.n.Load(), "if": req.Interface}}
	}
	return c
}

// notification is what an observe callback saw.
type notification struct {
	code       codes.Code
	seq        uint32
	hasObserve bool
	n          uint64
}

func decodeNotification(t testing.TB, m *pool.Message) notification {
	nt := notification{code: m.Code()}
	if v, err := m.Observe(); err == nil {
		nt.seq, nt.hasObserve = v, true
	}
	if b, err := m.ReadBody(); err == nil && len(b) > 0 {
		if mm, err := DecodeMap(b); err == nil {
			nt.n, _ = mm["n"].(uint64)
		}
	}
	return nt
}

// observeCollect registers an observation and collects its messages.
type collector struct {
	mu  sync.Mutex
	got []notification
}

func (c *collector) add(n notification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, n)
}

func (c *collector) all() []notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]notification(nil), c.got...)
}

func (c *collector) last() (notification, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return notification{}, false
	}
	return c.got[len(c.got)-1], true
}

func TestObserveNotifyInOrder(t *testing.T) {
	res := newCounter("/count")
	s, addr := startServer(t, testConfig(t), res)
	cc := dial(t, addr, true)
	var col collector
	ctx := context.Background()
	obs, err := cc.Observe(ctx, "/count", func(m *pool.Message) { col.add(decodeNotification(t, m)) },
		message.Option{ID: message.URIQuery, Value: []byte("if=" + IfBaseline)})
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	eventually(t, "registration reply", func() bool { _, ok := col.last(); return ok })
	if first := col.all()[0]; !first.hasObserve || first.code != codes.Content {
		t.Fatalf("registration reply = %+v, want 2.05 with Observe", first)
	}
	if s.obs.count() != 1 {
		t.Fatalf("observers = %d, want 1", s.obs.count())
	}

	// Fewer changes than the queue holds: each one arrives, in order, even
	// though they come faster than notifications are acknowledged.
	const changes = maxQueued
	for i := 1; i <= changes; i++ {
		res.n.Store(uint64(i))
		s.Notify("/count")
	}
	eventually(t, "last notification", func() bool { l, _ := col.last(); return l.n == changes })
	got := col.all()
	if len(got) != changes+1 {
		t.Fatalf("got %d messages, want the registration reply and %d notifications: %+v", len(got), changes, got)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].hasObserve || got[i].seq <= got[i-1].seq || got[i].n != uint64(i) {
			t.Fatalf("notification %d = %+v after %+v, want n=%d with a higher Observe number", i, got[i], got[i-1], i)
		}
	}
	// Notifications re-run Serve with the registration's interface.
	for _, r := range res.requests() {
		if r.Interface != IfBaseline || r.Method != codes.GET {
			t.Fatalf("notification served as %v %q, want GET %s", r.Method, r.Interface, IfBaseline)
		}
	}

	if err := obs.Cancel(ctx); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	eventually(t, "deregistration", func() bool { return s.obs.count() == 0 })
}

// TestObserveNoChangeLostAtRegistration: a change that comes while the
// registration reply is being rendered is either in the reply or notified
// after it. Notify used to find no observer yet, and the observer kept the
// stale state until the next change.
func TestObserveNoChangeLostAtRegistration(t *testing.T) {
	res := newCounter("/gate")
	rendering, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	counterServe := res.serve
	res.serve = func(req *Request) Response {
		r := counterServe(req) // reads n before the change
		once.Do(func() { close(rendering); <-release })
		return r
	}
	s, addr := startServer(t, testConfig(t), res)
	cc := dial(t, addr, true)
	var col collector
	go func() {
		_, _ = cc.Observe(context.Background(), "/gate", func(m *pool.Message) { col.add(decodeNotification(t, m)) })
	}()
	<-rendering
	res.n.Store(1)
	notified := make(chan struct{})
	go func() { s.Notify("/gate"); close(notified) }()
	select {
	case <-notified: // Notify did not wait for the registration
	case <-time.After(100 * time.Millisecond): // it waits, as it should
	}
	close(release)
	<-notified
	eventually(t, "the change notified", func() bool { l, _ := col.last(); return l.n == 1 })
	if got := col.all(); got[0].n != 0 {
		t.Fatalf("registration reply %+v, want the state before the change", got[0])
	}
}

// TestObserveQueueBound: an observer that falls behind keeps the newest
// maxQueued representations, oldest first, and loses only older ones.
func TestObserveQueueBound(t *testing.T) {
	o := newObservers(4)
	ob, _, ok := o.add(&observer{key: observerKey{token: "t"}, href: "/count"})
	if !ok {
		t.Fatal("add refused")
	}
	// Before the registration reply is out, a change is queued but sent
	// only once the reply is on the wire.
	if o.enqueue(ob, Response{Body: 0}) {
		t.Fatal("worker started before activation")
	}
	if !o.activate(ob) {
		t.Fatal("activation after a change started no worker")
	}
	if resp, _, ok := o.next(ob); !ok || resp.Body != 0 {
		t.Fatalf("first after activation = %v %v, want the change queued before it", resp, ok)
	}
	const n = maxQueued + 5
	for i := 1; i <= n; i++ {
		if start := o.enqueue(ob, Response{Body: i}); start {
			t.Fatalf("change %d started a second worker", i)
		}
	}
	var got []int
	for {
		resp, _, ok := o.next(ob)
		if !ok {
			break
		}
		got = append(got, resp.Body.(int))
	}
	want := make([]int, 0, maxQueued)
	for i := n - maxQueued + 1; i <= n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	// The worker has exited; the next change starts one.
	if !o.enqueue(ob, Response{Body: 99}) {
		t.Fatal("change after the worker exited started none")
	}
	o.remove(ob)
	if _, _, ok := o.next(ob); ok {
		t.Fatal("removed observer still has notifications")
	}
}

func TestObserveLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxObservers = 1
	res := newCounter("/count")
	s, addr := startServer(t, cfg, res)
	p := rawDial(t, addr)
	obs0 := uintOpt(message.Observe, 0)

	p.send(p.get(message.Confirmable, "/count", "t1", obs0))
	if r := p.recv(); !hasOption(r, message.Observe) {
		t.Fatalf("first registration not accepted: %v", r)
	}
	p.send(p.get(message.Confirmable, "/count", "t2", obs0))
	r := p.recv()
	if r.Code != codes.Content || hasOption(r, message.Observe) {
		t.Fatalf("registration over the limit = %v observe=%v, want 2.05 without Observe", r.Code, hasOption(r, message.Observe))
	}
	if n := s.obs.count(); n != 1 {
		t.Fatalf("observers = %d, want 1", n)
	}

	// Not observable: served, never registered.
	plain := newFake("/plain")
	if err := s.Handle(plain); err != nil {
		t.Fatal(err)
	}
	p.send(p.get(message.Confirmable, "/plain", "t3", obs0))
	if r := p.recv(); r.Code != codes.Content || hasOption(r, message.Observe) {
		t.Fatalf("observe of a non-observable resource = %v observe=%v", r.Code, hasOption(r, message.Observe))
	}
}

func hasOption(m message.Message, id message.OptionID) bool {
	return m.Options.HasOption(id)
}

// TestObserveResetDeregisters: the peer answers a notification with Reset.
func TestObserveResetDeregisters(t *testing.T) {
	res := newCounter("/count")
	s, addr := startServer(t, testConfig(t), res)
	p := rawDial(t, addr)
	p.send(p.get(message.Confirmable, "/count", "obs", uintOpt(message.Observe, 0)))
	if r := p.recv(); !hasOption(r, message.Observe) {
		t.Fatalf("registration reply without Observe: %v", r)
	}
	s.Notify("/count")
	n := p.recv()
	if n.Type != message.Confirmable || string(n.Token) != "obs" || !hasOption(n, message.Observe) {
		t.Fatalf("notification = %v, want CON with token obs and Observe", n)
	}
	p.send(message.Message{Type: message.Reset, Code: codes.Empty, MessageID: n.MessageID})
	eventually(t, "observer removed by Reset", func() bool { return s.obs.count() == 0 })

	// Nothing more is sent: the next datagram is the reply to a new GET.
	s.Notify("/count")
	p.send(p.get(message.Confirmable, "/oic/p", "after"))
	if r := p.recv(); string(r.Token) != "after" {
		t.Fatalf("got %v token %q after Reset, want only the GET reply", r.Type, r.Token)
	}
}

// TestObserveErrorEnds: an error representation is sent once, without
// Observe, and ends the observation.
func TestObserveErrorEnds(t *testing.T) {
	res := newCounter("/count")
	s, addr := startServer(t, testConfig(t), res)
	p := rawDial(t, addr)
	p.send(p.get(message.Confirmable, "/count", "obs", uintOpt(message.Observe, 0)))
	p.recv()
	res.setServe(func(*Request) Response { return ErrorResponse(codes.ServiceUnavailable, "", "gone") })
	s.Notify("/count")
	n := p.recv()
	if n.Code != codes.ServiceUnavailable || hasOption(n, message.Observe) {
		t.Fatalf("final notification = %v observe=%v, want 5.03 without Observe", n.Code, hasOption(n, message.Observe))
	}
	p.send(message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: n.MessageID})
	eventually(t, "observer removed after error", func() bool { return s.obs.count() == 0 })
}

// TestObserveUnacknowledgedRemoved: a peer that never ACKs loses its
// registration once NotifyTimeout passes.
func TestObserveUnacknowledgedRemoved(t *testing.T) {
	cfg := testConfig(t)
	cfg.NotifyTimeout = 300 * time.Millisecond
	res := newCounter("/count")
	s, addr := startServer(t, cfg, res)
	p := rawDial(t, addr)
	p.send(p.get(message.Confirmable, "/count", "obs", uintOpt(message.Observe, 0)))
	p.recv()
	s.Notify("/count")
	p.recv() // the notification, never acknowledged
	eventually(t, "unacknowledged observer removed", func() bool { return s.obs.count() == 0 })
}

// TestObserveReRegistration: the same token registers once, and Observe=1
// deregisters.
func TestObserveReRegistration(t *testing.T) {
	res := newCounter("/count")
	s, addr := startServer(t, testConfig(t), res)
	p := rawDial(t, addr)
	var last uint32
	for i := range 2 {
		p.send(p.get(message.Confirmable, "/count", "same", uintOpt(message.Observe, 0)))
		r := p.recv()
		seq, err := r.Options.Observe()
		if err != nil || (i > 0 && seq <= last) {
			t.Fatalf("registration %d: seq %d after %d (%v)", i, seq, last, err)
		}
		last = seq
	}
	if n := s.obs.count(); n != 1 {
		t.Fatalf("observers after re-registration = %d, want 1", n)
	}
	p.send(p.get(message.Confirmable, "/count", "same", uintOpt(message.Observe, 1)))
	if r := p.recv(); r.Code != codes.Content || hasOption(r, message.Observe) {
		t.Fatalf("deregistration reply = %v observe=%v", r.Code, hasOption(r, message.Observe))
	}
	if n := s.obs.count(); n != 0 {
		t.Fatalf("observers after deregistration = %d, want 0", n)
	}
}

func TestSoftwareVersionNotifiesDevice(t *testing.T) {
	s, addr := startServer(t, testConfig(t))
	p := rawDial(t, addr)
	p.send(p.get(message.Confirmable, HrefDevice, "dev", uintOpt(message.Observe, 0)))
	p.recv()
	if err := s.SetSoftwareVersion("2.0.0"); err != nil {
		t.Fatal(err)
	}
	n := p.recv()
	var rep deviceRep
	if err := Decode(n.Payload, &rep); err != nil || rep.SV != "2.0.0" {
		t.Fatalf("notification sv = %q (%v)", rep.SV, err)
	}
	if s.Device().SoftwareVersion != "2.0.0" {
		t.Errorf("Device().SoftwareVersion = %q", s.Device().SoftwareVersion)
	}
	if err := s.SetSoftwareVersion(""); err == nil {
		t.Error("empty software version accepted")
	}
}
