package tufrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
)

// The CoAP servers below use go-coap for the wire format only. go-coap's
// own UDP server keeps every response it sent to a peer for
// EXCHANGE_LIFETIME (247 s) and scans that cache on every datagram, which
// makes a block-wise download quadratic in its number of blocks and holds
// about a package's worth of memory per client for four minutes
// (plgd-dev/go-coap#586). The handler in coap_msg.go needs no state
// between datagrams, so the servers are plain read-answer loops.

const (
	// maxCoAPWorkers bounds the goroutines reading the UDP socket (see
	// coapWorkers).
	maxCoAPWorkers = 4
	// maxDatagram holds any UDP payload, so no request is ever truncated
	// into a different, valid one.
	maxDatagram = 1 << 16

	// coapsMaxSessions bounds concurrent DTLS sessions (handshakes in
	// progress included); a client beyond it is refused at once.
	coapsMaxSessions = 128
	// coapsHandshakeTimeout is go-coap's default.
	coapsHandshakeTimeout = 30 * time.Second
	// coapsIdleTimeout ends a session that has sent nothing for that long.
	// The device closes its session after each download attempt; this is
	// for peers that vanish without a close_notify.
	coapsIdleTimeout = 2 * time.Minute
	// coapsReadBuffer is pion/dtls's receive buffer: no record carries
	// more.
	coapsReadBuffer = 8192

	// maxAcceptBackoff bounds the wait after a failed read or accept.
	maxAcceptBackoff = time.Second
)

// ServeCoAP serves DIR/repository over CoAP on conn until ctx is done, then
// returns nil. conn is closed on return. The caller binds conn
// (net.ListenUDP) and so knows the address to print before serving.
//
// GET /PATH answers with the file (4.04 when it is not served, by the same
// rules as NewHandler). Files larger than one block are sent with Block2:
// the client's Block2 option picks the block (num) and size (szx, reduced to
// ServeOptions.BlockSize when larger), and every block carries the file's
// ETag and Size2, so a client detects a file replaced mid-transfer and can
// resume from any block. Confirmable requests get a piggybacked
// acknowledgement, Non-confirmable ones a Non-confirmable response; the
// server keeps no state between requests (see coap_msg.go).
func ServeCoAP(ctx context.Context, conn *net.UDPConn, dir string, opts ServeOptions) error {
	h, err := newCoAPHandler(dir, opts)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer h.close()
	addr := conn.LocalAddr()
	stop := h.watch(ctx, func() { _ = conn.Close() })
	workers := coapWorkers()
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- h.serveUDP(ctx, conn)
		}()
	}
	wg.Wait()
	stop()
	close(errc)
	if ctx.Err() != nil {
		return nil
	}
	for err := range errc {
		if err != nil {
			return fmt.Errorf("serve coap %s: %w", addr, err)
		}
	}
	return nil
}

// coapWorkers is how many goroutines read the UDP socket; each answers one
// datagram at a time, and the kernel's socket buffer is the queue (a burst
// beyond it is dropped as on any congested path; clients retransmit).
// Readers of one socket hand it to each other through the runtime on every
// datagram: measured on two cores, one reader serves a client in another
// process ~5% faster than two or four, with ~30% less CPU per block, and
// four clients no slower. So one reader per two cores, for servers whose
// cores can answer several clients at once.
func coapWorkers() int {
	return min(max(runtime.GOMAXPROCS(0)/2, 1), maxCoAPWorkers)
}

// serveUDP answers datagrams on conn until conn is closed.
func (h *coapHandler) serveUDP(ctx context.Context, conn *net.UDPConn) error {
	s := newCoAPScratch(int(h.maxSZX.Size()))
	buf := make([]byte, maxDatagram)
	var backoff time.Duration
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return err
			}
			// Not seen on Linux for unconnected sockets; should a
			// platform report something transient, keep serving.
			h.errs.report(fmt.Errorf("coap: read: %w", err))
			backoff = nextBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				return ctx.Err()
			}
			continue
		}
		backoff = 0
		if resp := h.respond(buf[:n], from, s); resp != nil {
			if _, err := conn.WriteToUDPAddrPort(resp, from); err != nil {
				h.errs.report(fmt.Errorf("coap: reply to %v: %w", from, err))
			}
		}
	}
}

// ServeCoAPs serves DIR/repository over CoAP over DTLS on ln (for example
// coapNet.NewDTLSListener("udp", addr, dtlsConfig)) until ctx is done, with
// the same behaviour as ServeCoAP. ln, and every session it accepted, is
// closed on return. Each session is served by its own goroutine, at most
// coapsMaxSessions at once, and ends after coapsIdleTimeout without a
// request.
func ServeCoAPs(ctx context.Context, ln dtlsServer.Listener, dir string, opts ServeOptions) error {
	return serveCoAPs(ctx, ln, dir, opts, defaultSessionLimits)
}

// sessionLimits bound the DTLS sessions; tests shorten them.
type sessionLimits struct {
	max       int
	handshake time.Duration
	idle      time.Duration
}

var defaultSessionLimits = sessionLimits{max: coapsMaxSessions, handshake: coapsHandshakeTimeout, idle: coapsIdleTimeout}

func serveCoAPs(ctx context.Context, ln dtlsServer.Listener, dir string, opts ServeOptions, lim sessionLimits) error {
	h, err := newCoAPHandler(dir, opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer h.close()
	sess := newSessionSet(lim.max)
	stop := h.watch(ctx, func() {
		_ = ln.Close() // coapNet.DTLSListener tolerates a second Close
		sess.closeAll()
	})
	err = h.acceptDTLS(ctx, ln, sess, lim)
	stop()
	sess.wait()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("serve coaps: %w", err)
	}
	return nil
}

// acceptDTLS starts a session for each connection ln accepts until ln is
// closed.
func (h *coapHandler) acceptDTLS(ctx context.Context, ln dtlsServer.Listener, sess *sessionSet, lim sessionLimits) error {
	var backoff time.Duration
	for {
		conn, err := ln.AcceptWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, coapNet.ErrListenerIsClosed) || errors.Is(err, net.ErrClosed) {
				return err
			}
			h.errs.report(fmt.Errorf("coaps: accept: %w", err))
			backoff = nextBackoff(backoff)
			if !sleepCtx(ctx, backoff) {
				return ctx.Err()
			}
			continue
		}
		backoff = 0
		if conn == nil {
			continue
		}
		if !sess.add(conn) {
			h.errs.report(fmt.Errorf("coaps: %v refused: %d sessions open", conn.RemoteAddr(), lim.max))
			_ = conn.Close()
			continue
		}
		go func() {
			defer sess.remove(conn)
			h.serveSession(ctx, conn, lim)
		}()
	}
}

// handshaker is pion/dtls's *Conn; the handshake is done explicitly so
// that it is bounded in time.
type handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// serveSession answers the requests of one DTLS session, one datagram per
// Read, until the peer closes it, it is idle for lim.idle, or ctx
// is done.
func (h *coapHandler) serveSession(ctx context.Context, conn net.Conn, lim sessionLimits) {
	peer := conn.RemoteAddr()
	if hs, ok := conn.(handshaker); ok {
		hctx, cancel := context.WithTimeout(ctx, lim.handshake)
		err := hs.HandshakeContext(hctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				h.errs.report(fmt.Errorf("coaps %v: handshake: %w", peer, err))
			}
			return
		}
	}
	s := newCoAPScratch(int(h.maxSZX.Size()))
	buf := make([]byte, coapsReadBuffer)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(lim.idle)); err != nil {
			return // closed
		}
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			quiet := ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
				(errors.As(err, &ne) && ne.Timeout())
			if !quiet {
				h.errs.report(fmt.Errorf("coaps %v: read: %w", peer, err))
			}
			return
		}
		if resp := h.respond(buf[:n], peer, s); resp != nil {
			if _, err := conn.Write(resp); err != nil {
				if ctx.Err() == nil {
					h.errs.report(fmt.Errorf("coaps %v: reply: %w", peer, err))
				}
				return
			}
		}
	}
}

// sessionSet tracks the open DTLS sessions so that shutdown can close
// them and wait for their goroutines.
type sessionSet struct {
	max    int
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newSessionSet(limit int) *sessionSet {
	return &sessionSet{max: limit, conns: make(map[net.Conn]struct{})}
}

// add registers conn; false when shutting down or full.
func (s *sessionSet) add(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.max {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

// remove closes conn and forgets it.
func (s *sessionSet) remove(conn net.Conn) {
	_ = conn.Close() // sends close_notify; a second Close is harmless
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.wg.Done()
}

// closeAll closes every session and refuses new ones.
func (s *sessionSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
}

func (s *sessionSet) wait() { s.wg.Wait() }

// watch runs the handler's housekeeping until ctx is done or stop is
// called, then calls shutdown once; stop waits for that.
func (h *coapHandler) watch(ctx context.Context, shutdown func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer shutdown()
		t := time.NewTicker(fileCacheSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				h.files.sweep()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 10 * time.Millisecond
	}
	return min(2*d, maxAcceptBackoff)
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func coapFormat(name string) message.MediaType {
	if strings.HasSuffix(name, ".json") {
		return message.AppJSON
	}
	return message.AppOctets
}

// errorReporter passes errors to ServeOptions.Errors, at most
// errorsPerSecond a second: a peer sending junk must not turn into a flood
// of log lines. What it holds back is counted in the next report.
type errorReporter struct {
	fn         func(error)
	now        func() time.Time
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

const errorsPerSecond = 10

func newErrorReporter(opts ServeOptions) *errorReporter {
	return &errorReporter{fn: opts.Errors, now: time.Now}
}

func (r *errorReporter) report(err error) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.window) >= time.Second {
		r.window, r.n = now, 0
	}
	if r.n >= errorsPerSecond {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.n++
	held := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	if held > 0 {
		err = fmt.Errorf("%w (and %d more errors not reported)", err, held)
	}
	r.fn(err)
}
