package ocf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// ErrClosed is returned by Listen and Handle after Close.
var ErrClosed = errors.New("ocf server closed")

// Server is an OCF server over CoAP/UDP and CoAPs (DTLS): it owns the listeners, the
// resources by href, the observers, and the core resources /oic/res, /oic/d
// and /oic/p. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	szx uint8 // Block2 size exponent of responses

	device   *deviceResource
	obs      *observers
	notifyMu sync.Mutex // orders Notify calls
	block1   *block1Store

	mu        sync.RWMutex
	closed    bool
	resources map[string]Resource
	listeners []*listener

	done     chan struct{}  // closed by Close: the Server's lifetime
	serveErr chan error     // first listener failure, for Serve
	wg       sync.WaitGroup // every goroutine the Server starts
}

// listener is one bound socket and the go-coap server reading it.
type listener struct {
	network string
	scheme  string // "coap", or "coaps" for a DTLS listener
	addr    *net.UDPAddr
	srv     interface{ Stop() } // go-coap's UDP or DTLS server
	dtls    *dtlsListener       // the session bounds of a DTLS listener; nil for plain CoAP
}

// peer describes the sender on this listener. Over plain CoAP no identity
// is known; over CoAPs it is the one the DTLS handshake established.
func (l *listener) peer(cc *udpClient.Conn) Peer {
	p := Peer{Addr: cc.RemoteAddr().String()}
	if l.dtls == nil {
		return p
	}
	if dc, ok := cc.NetConn().(*dtlsConn); ok {
		p.Auth, p.Identity, p.Secure = dc.identity()
	}
	return p
}

// NewServer validates cfg and returns a Server with /oic/res, /oic/d and
// /oic/p registered. It starts nothing; see Listen.
func NewServer(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		szx:       szxMax,
		device:    &deviceResource{info: cfg.Device},
		obs:       newObservers(cfg.MaxObservers),
		block1:    newBlock1Store(),
		resources: make(map[string]Resource),
		done:      make(chan struct{}),
		serveErr:  make(chan error, 1),
	}
	for _, r := range []Resource{&resResource{s: s}, s.device, &platformResource{info: cfg.Platform}} {
		if err := s.Handle(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handle registers r at r.Href(). The href must start with "/", and be new;
// a resource needs at least one interface (the first is its default).
// Resources may be added while the Server is listening.
func (s *Server) Handle(r Resource) error {
	href := r.Href()
	switch {
	case !strings.HasPrefix(href, "/") || strings.Contains(href, "?"):
		return fmt.Errorf("handle %q: href must be a path starting with /", href)
	case len(r.Interfaces()) == 0:
		return fmt.Errorf("handle %s: resource has no interfaces", href)
	case len(r.Types()) == 0:
		return fmt.Errorf("handle %s: resource has no resource types", href)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("handle %s: %w", href, ErrClosed)
	}
	if _, dup := s.resources[href]; dup {
		return fmt.Errorf("handle %s: href already registered", href)
	}
	s.resources[href] = r
	return nil
}

func (s *Server) resource(href string) Resource {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.resources[href]
}

// Listen binds a UDP socket ("udp", "udp4" or "udp6"; addr as for
// net.ListenPacket, e.g. "127.0.0.1:0" or ":5683") and starts serving it.
// It may be called more than once, e.g. once per address family. It
// returns the bound address. With Config.Multicast and port 5683 it also
// joins the OCF discovery groups of the socket's family. ctx bounds the bind
// only; the listener runs until Close.
func (s *Server) Listen(ctx context.Context, network, addr string) (net.Addr, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("listen %s %s: network must be udp, udp4 or udp6", network, addr)
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, fmt.Errorf("listen %s %s: unexpected %T", network, addr, pc)
	}
	conn := coapNet.NewUDPConn(network, uc)
	l := &listener{network: network, scheme: "coap", addr: uc.LocalAddr().(*net.UDPAddr)}
	if s.cfg.Multicast && l.addr.Port == MulticastPort {
		if err := joinDiscoveryGroups(conn, l.addr, s.cfg.Logger); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("listen %s %s: %w", network, addr, err)
		}
	}
	srv := udp.NewServer(s.coapConfig(l))
	l.srv = srv
	if err := s.start(l, func() error { return srv.Serve(conn) }, conn.Close); err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	s.cfg.Logger.Info("listening", "network", network, "addr", l.addr.String(), "multicast", s.cfg.Multicast && l.addr.Port == MulticastPort)
	return l.addr, nil
}

// Serve blocks until ctx is done, Close is called, or a listener fails, and
// then closes the Server. It returns nil on cancellation and Close, or the
// listener's error.
func (s *Server) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return s.Close()
	case <-s.done:
		return nil
	case err := <-s.serveErr:
		return errors.Join(err, s.Close())
	}
}

// start adds l to the server and runs serve in a goroutine the server
// waits for; a serve error ends Serve. On a closed server it calls
// closeSocket instead and returns ErrClosed.
func (s *Server) start(l *listener, serve, closeSocket func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = closeSocket()
		return ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil {
			select {
			case s.serveErr <- fmt.Errorf("serve %s %s: %w", l.scheme, l.addr, err):
			default:
			}
		}
	}()
	return nil
}

// CloseSecureSessions closes every CoAPs session of the server and returns
// how many there were. Each peer must shake hands again and is then checked
// against the credentials, revocations and access rules in force; the
// Observe registrations of those sessions end with them (clients register
// again). Used after the device's security files were reloaded.
func (s *Server) CloseSecureSessions() int {
	s.mu.RLock()
	ls := slices.Clone(s.listeners)
	s.mu.RUnlock()
	n := 0
	for _, l := range ls {
		if l.dtls != nil {
			n += l.dtls.closeSessions()
		}
	}
	return n
}

// Close stops all listeners and waits for the requests in flight and every
// goroutine the Server started (notifications); no Resource.Serve runs
// after it returns. go-coap's per-peer reader goroutines end right after.
// It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	ls := s.listeners
	s.mu.Unlock()
	for _, l := range ls {
		l.srv.Stop()
	}
	s.wg.Wait()
	return nil
}

// goWorker runs f on a goroutine that Close waits for; it reports false,
// running nothing, once the Server is closed.
func (s *Server) goWorker(f func()) bool {
	done, ok := s.track()
	if !ok {
		return false
	}
	go func() {
		defer done()
		f()
	}()
	return true
}

// track registers work that Close must wait for; ok is false once the
// Server is closed, and then the work must not start.
func (s *Server) track() (done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	return s.wg.Done, true
}

// Device returns the current /oic/d content.
func (s *Server) Device() DeviceInfo { return s.device.snapshot() }

// SetSoftwareVersion changes sv in /oic/d, after a confirmed upgrade, and
// notifies its observers when it changed.
func (s *Server) SetSoftwareVersion(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("set software version %q: must be 1..64 bytes", v)
	}
	if s.device.setSoftwareVersion(v) {
		s.Notify(HrefDevice)
	}
	return nil
}
