package ocf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Observe (RFC 7641). An observer is keyed by its go-coap connection (one per
// remote address and listener) and token. Notify renders the resource's
// representation for each observer at once and queues it; each observer then
// has at most one worker goroutine, which sends one CON notification at a
// time and waits for its ACK. So an observer sees every state in the order
// the resource went through them, also states that lasted an instant, and a
// slow observer delays nobody else. The queue is bounded: an observer that
// falls more than maxQueued notifications behind loses the oldest ones, never
// the latest (RFC 7641 §4.5: the client is interested in the current state).
// A registration renders its reply and registers under the same lock as
// Notify (serveRequest), so no change falls between the reply and the
// first notification; notifications queued before the reply is on the wire
// wait for it (activate).
// Workers exist only while there is something to send.

// maxQueued bounds the notifications waiting for one observer.
const maxQueued = 16

// observerKey identifies a registration: remote address (through the
// connection) and token.
type observerKey struct {
	cc    *udpClient.Conn
	token string
}

type observer struct {
	key    observerKey
	href   string
	iface  string
	query  []string
	peer   Peer
	format wireFormat
	szx    uint8

	// Guarded by observers.mu.
	active  bool       // its registration reply is on the wire
	queue   []Response // rendered by Notify, oldest first
	running bool       // a worker is sending
	removed bool       // deregistered; the worker stops
	mid     int32      // message ID of the notification awaiting its ACK, or -1
}

// observers is the registry of all observers of a Server.
type observers struct {
	mu    sync.Mutex
	max   int
	seq   uint32 // last Observe sequence number handed out
	byKey map[observerKey]*observer
}

func newObservers(limit int) *observers {
	return &observers{max: limit, seq: 1, byKey: make(map[observerKey]*observer)}
}

// nextSeq returns the next 24-bit Observe number. One counter for the whole
// server keeps each observer's numbers increasing, also across a
// re-registration with the same token. Callers hold mu.
func (o *observers) nextSeq() uint32 {
	o.seq = (o.seq + 1) & (1<<24 - 1)
	return o.seq
}

// add registers ob, replacing a registration with the same key (RFC 7641
// §4.1), and returns the Observe number of its registration reply. It fails
// when the limit is reached.
func (o *observers) add(ob *observer) (*observer, uint32, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.byKey[ob.key]; ok {
		old.removed = true
	} else if len(o.byKey) >= o.max {
		return nil, 0, false
	}
	ob.mid = -1
	o.byKey[ob.key] = ob
	return ob, o.nextSeq(), true
}

func (o *observers) get(k observerKey) *observer {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byKey[k]
}

// remove deregisters ob; nil is ignored.
func (o *observers) remove(ob *observer) {
	if ob == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.removeLocked(ob)
}

func (o *observers) removeLocked(ob *observer) {
	if o.byKey[ob.key] == ob {
		delete(o.byKey, ob.key)
	}
	ob.removed = true
}

// removeConn drops every observer of a closed connection.
func (o *observers) removeConn(cc *udpClient.Conn) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, ob := range o.byKey {
		if k.cc == cc {
			o.removeLocked(ob)
		}
	}
}

// hasConn reports whether cc has observers, which keeps it open while idle.
func (o *observers) hasConn(cc *udpClient.Conn) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.byKey {
		if k.cc == cc {
			return true
		}
	}
	return false
}

// resetByMID deregisters the observer whose pending notification the peer
// answered with Reset (RFC 7641 §3.6), and reports whether there was one.
func (o *observers) resetByMID(cc *udpClient.Conn, mid int32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, ob := range o.byKey {
		if k.cc == cc && ob.mid == mid {
			o.removeLocked(ob)
			return true
		}
	}
	return false
}

func (o *observers) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.byKey)
}

// of returns the observers of href.
func (o *observers) of(href string) []*observer {
	o.mu.Lock()
	defer o.mu.Unlock()
	var obs []*observer
	for _, ob := range o.byKey {
		if ob.href == href {
			obs = append(obs, ob)
		}
	}
	return obs
}

// enqueue queues resp for ob and reports whether a worker must start: not
// before ob's registration reply is on the wire (activate starts it then).
func (o *observers) enqueue(ob *observer, resp Response) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ob.removed {
		return false
	}
	if len(ob.queue) >= maxQueued {
		ob.queue = slices.Delete(ob.queue, 0, 1)
	}
	ob.queue = append(ob.queue, resp)
	if !ob.active || ob.running {
		return false
	}
	ob.running = true
	return true
}

// activate marks ob's registration reply as sent and reports whether a
// worker must start for a Notify that came in meanwhile.
func (o *observers) activate(ob *observer) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ob.removed {
		return false
	}
	ob.active = true
	if len(ob.queue) > 0 && !ob.running {
		ob.running = true
		return true
	}
	return false
}

// next claims the next queued notification of ob and its Observe number;
// ok is false when there is none and the worker must exit.
func (o *observers) next(ob *observer) (resp Response, seq uint32, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ob.removed || len(ob.queue) == 0 {
		ob.running = false
		return Response{}, 0, false
	}
	resp = ob.queue[0]
	ob.queue = slices.Delete(ob.queue, 0, 1)
	return resp, o.nextSeq(), true
}

func (o *observers) setMID(ob *observer, mid int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ob.mid = mid
}

func (o *observers) isRemoved(ob *observer) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return ob.removed
}

// Notify sends every observer of href the resource's current
// representation: Serve runs now, as a GET with each observer's interface,
// query and peer, and the result is queued for that observer. It does not
// wait for the network; notifications go out from per-observer workers.
// Call it after every change of the resource's state: each call becomes one
// notification, in order.
func (s *Server) Notify(href string) {
	res := s.resource(href)
	if res == nil {
		return
	}
	// One Notify at a time, so that queues keep the order of the changes
	// even when two goroutines notify at once.
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	for _, ob := range s.obs.of(href) {
		if s.obs.enqueue(ob, s.render(s.lifetime(), res, ob)) {
			s.startNotifier(ob)
		}
	}
}

// render runs Serve for ob as a GET.
func (s *Server) render(ctx context.Context, res Resource, ob *observer) Response {
	return res.Serve(ctx, &Request{Method: codes.GET, Interface: ob.iface, Query: ob.query, Peer: ob.peer})
}

// activate is called once a registration reply is on the wire.
func (s *Server) activate(ob *observer) {
	if ob != nil && s.obs.activate(ob) {
		s.startNotifier(ob)
	}
}

func (s *Server) startNotifier(ob *observer) {
	if !s.goWorker(func() { s.notifyLoop(ob) }) {
		s.obs.remove(ob)
	}
}

func (s *Server) notifyLoop(ob *observer) {
	for {
		resp, seq, ok := s.obs.next(ob)
		if !ok {
			return
		}
		if err := s.notify(ob, resp, seq); err != nil {
			s.obs.remove(ob)
			s.cfg.Logger.Debug("observer removed", "href", ob.href, "peer", ob.peer.Addr, "reason", err)
			return
		}
	}
}

var (
	errFinalNotification = errors.New("resource answered an error; sent as final notification")
	errObserverReset     = errors.New("peer answered the notification with Reset")
)

// notify sends one notification with Observe number seq and waits for its
// ACK.
func (s *Server) notify(ob *observer, resp Response, seq uint32) error {
	ctx, cancel := context.WithTimeout(s.lifetime(), s.cfg.NotifyTimeout)
	defer cancel()
	rep := s.encode(codes.GET, resp)
	final := rep.code != codes.Content
	if rep.payload != nil {
		part, blk, err := sliceBlock2(rep.payload, blockOpt{}, false, ob.szx)
		if err != nil {
			return fmt.Errorf("slice notification: %w", err)
		}
		rep.payload, rep.block = part, blk
	}
	// RFC 7641 §3.2: an error ends the observation; it goes out without
	// the Observe option.
	rep.observeSeq, rep.hasObserve = seq, !final

	cc := ob.key.cc
	msg := cc.AcquireMessage(ctx)
	defer cc.ReleaseMessage(msg)
	fill(msg, []byte(ob.key.token), ob.format, rep)
	mid := cc.GetMessageID()
	msg.SetType(message.Confirmable)
	msg.SetMessageID(mid)
	s.obs.setMID(ob, mid)
	err := cc.WriteMessage(msg)
	s.obs.setMID(ob, -1)
	s.cfg.Logger.Debug("notification", "href", ob.href, "peer", ob.peer.Addr, "seq", seq, "code", rep.code.String(), "err", err)
	switch {
	case err != nil:
		return fmt.Errorf("send notification %d: %w", seq, err)
	case final:
		return errFinalNotification
	case s.obs.isRemoved(ob):
		return errObserverReset
	}
	return nil
}
