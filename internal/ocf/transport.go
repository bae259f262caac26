package ocf

import (
	"context"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/server"

	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
)

// go-coap wiring. Each listener runs its own go-coap UDP or DTLS server
// (go-coap serves one socket per server); all of them share the handler,
// the observers and the lifetime of the Server.

const (
	// maxDatagram lets any UDP datagram reach the handler, so a body over
	// MaxBodySize is answered 4.13 instead of being dropped unanswered.
	maxDatagram = 65507
	// connIdleTimeout closes per-peer state of peers that went quiet and
	// observe nothing.
	connIdleTimeout = 60 * time.Second
	// tick drives go-coap's retransmissions and expirations; its
	// granularity bounds how late a CON notification is retransmitted.
	tick = 250 * time.Millisecond
)

// serverOption sets go-coap's UDP server config directly, which reaches
// fields (inactivity monitor factory, request monitor) that go-coap's own
// options do not.
type serverOption func(*server.Config)

func (o serverOption) UDPServerApply(cfg *server.Config) { o(cfg) }

// dtlsServerOption is serverOption for go-coap's DTLS server.
type dtlsServerOption func(*dtlsServer.Config)

func (o dtlsServerOption) DTLSServerApply(cfg *dtlsServer.Config) { o(cfg) }

// coapConfig configures the go-coap server of listener l.
func (s *Server) coapConfig(l *listener) serverOption {
	return func(cfg *server.Config) {
		h := s.hooks(l, connIdleTimeout)
		cfg.Ctx = s.lifetime()
		cfg.Errors = h.errors
		cfg.MaxMessageSize = maxDatagram
		// Block2 is ours (blockwise.go); go-coap's would buffer every
		// body and keep a cache per transfer.
		cfg.BlockwiseEnable = false
		cfg.PeriodicRunner = s.runPeriodic
		cfg.Handler = h.handler
		cfg.RequestMonitor = s.screen
		cfg.OnNewConn = h.onNewConn
		cfg.CreateInactivityMonitor = h.inactivity
	}
}

// dtlsCoAPConfig configures the go-coap DTLS server of listener l: the same
// handling as plain CoAP, the session idle timeout of d, and go-coap's
// handshake timeout (the listener itself bounds the handshakes in flight).
func (s *Server) dtlsCoAPConfig(l *listener, d DTLSConfig) dtlsServerOption {
	return func(cfg *dtlsServer.Config) {
		h := s.hooks(l, d.IdleTimeout)
		cfg.Ctx = s.lifetime()
		cfg.Errors = h.errors
		cfg.MaxMessageSize = maxDatagram
		cfg.BlockwiseEnable = false
		cfg.PeriodicRunner = s.runPeriodic
		cfg.Handler = h.handler
		cfg.RequestMonitor = s.screen
		cfg.OnNewConn = h.onNewConn
		cfg.CreateInactivityMonitor = h.inactivity
		cfg.HandshakeTimeout = d.HandshakeTimeout
	}
}

// coapHooks are the callbacks both go-coap servers get.
type coapHooks struct {
	errors     func(error)
	handler    func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message)
	onNewConn  func(cc *udpClient.Conn)
	inactivity func() udpClient.InactivityMonitor
}

// hooks builds the callbacks for listener l; a connection that stays idle
// for idle and observes nothing is closed.
func (s *Server) hooks(l *listener, idle time.Duration) coapHooks {
	return coapHooks{
		errors: func(err error) {
			if done, ok := s.track(); ok {
				defer done()
				s.cfg.Logger.Debug("coap transport", "scheme", l.scheme, "err", err)
			}
		},
		handler: func(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
			// go-coap's Stop does not wait for its per-peer goroutines;
			// tracking the handler makes Close wait for requests in
			// flight, so no Resource.Serve runs after Close returns.
			if done, ok := s.track(); ok {
				defer done()
				s.handleCoAP(l, w, r)
			}
		},
		onNewConn: func(cc *udpClient.Conn) {
			cc.AddOnClose(func() { s.obs.removeConn(cc) })
		},
		inactivity: func() udpClient.InactivityMonitor {
			return udpClient.DeferInactivityWhileConfirmableMessagesPending(
				inactivity.New(idle, func(cc *udpClient.Conn) {
					if s.obs.hasConn(cc) {
						return // its observers keep it; a failed notification removes them
					}
					_ = cc.Close()
				}))
		},
	}
}

// screen runs before go-coap looks at a message. A Reset answers one of our
// notifications (deregistering its observer, RFC 7641 §3.6) or nothing; an
// unmatched one, and any Empty NON, is dropped so that nothing in go-coap
// answers it. A CON Empty (CoAP ping) passes: go-coap answers it with the
// Reset RFC 7252 §4.3 asks for.
func (s *Server) screen(cc *udpClient.Conn, m *pool.Message) (drop bool, err error) {
	switch {
	case m.Type() == message.Reset:
		return !s.obs.resetByMID(cc, m.MessageID()), nil
	case m.Type() == message.NonConfirmable && m.Code() == codes.Empty:
		return true, nil
	}
	return false, nil
}

// runPeriodic is go-coap's periodic runner, tied to the Server's lifetime
// and wait group instead of go-coap's own sleeping goroutine, which would
// outlive Close by up to four seconds.
func (s *Server) runPeriodic(f func(now time.Time) bool) {
	s.goWorker(func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case now := <-t.C:
				if !f(now) {
					return
				}
			}
		}
	})
}

// lifetimeCtx is a context cancelled when the Server closes.
type lifetimeCtx struct{ done <-chan struct{} }

func (c lifetimeCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c lifetimeCtx) Done() <-chan struct{}       { return c.done }
func (c lifetimeCtx) Value(any) any               { return nil }
func (c lifetimeCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// lifetime returns a context for work the Server starts by itself
// (notifications, go-coap connections); it ends with Close.
func (s *Server) lifetime() context.Context { return lifetimeCtx{done: s.done} }
