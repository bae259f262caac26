package ocf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/logging"
	coapDTLS "github.com/plgd-dev/go-coap/v3/dtls"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
)

// CoAPs: a DTLS listener is pion/dtls v3 under go-coap's DTLS server, with
// the same request handling as plain CoAP. This file adds what a device on
// a hostile LAN needs around it: credentials (PSK and X.509), the peer's
// identity for the Authorizer, and bounds on sessions and handshakes.

// Defaults applied by ListenDTLS to zero DTLSConfig fields.
const (
	DefaultDTLSMaxSessions            = 32
	DefaultDTLSMaxHandshakesPerSource = 4
	DefaultDTLSHandshakeTimeout       = 10 * time.Second
	DefaultDTLSIdleTimeout            = 2 * time.Minute
)

// PSKCipherSuites are offered when DTLSConfig.PSK is set: the CCM_8 suite
// RFC 7252 makes mandatory for CoAP, the ECDHE one (forward secrecy), and
// the suites OpenSSL-based clients such as libcoap's prefer.
var PSKCipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_PSK_WITH_AES_128_CCM_8,
	piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
	piondtls.TLS_PSK_WITH_AES_128_CCM,
	piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	piondtls.TLS_PSK_WITH_AES_128_CBC_SHA256,
}

// CertificateCipherSuites are offered when DTLSConfig.Certificate is set:
// ECDSA P-256, with the CCM_8 suite RFC 7252 makes mandatory first.
var CertificateCipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
}

// DTLSConfig configures a CoAPs listener: its credentials and the bounds
// that keep a flood of handshakes from exhausting the device. Zero limits
// get the documented defaults.
type DTLSConfig struct {
	// PSK returns the pre-shared key of a client's PSK identity, or an
	// error for an identity it does not know (the handshake then fails).
	// Nil disables the PSK cipher suites.
	PSK func(identity []byte) ([]byte, error)

	// Certificate is the device's own certificate chain and ECDSA P-256
	// key, presented in certificate handshakes. Nil disables the
	// certificate cipher suites.
	Certificate *tls.Certificate

	// ClientCAs are the trust anchors client certificates must chain to;
	// required with Certificate. A certificate handshake without a client
	// certificate that verifies is refused: every CoAPs peer is
	// authenticated.
	ClientCAs *x509.CertPool

	// VerifyPeerCertificate, when not nil, is called in every certificate
	// handshake once the client's chain verified against ClientCAs, with
	// the raw certificates and the verified chains (crypto/tls's hook); an
	// error fails the handshake (alert bad_certificate). Revocation checks
	// plug in here (creds.Revocation). It is called concurrently, and is
	// read at each handshake: sessions established before it changes its
	// mind are not re-checked.
	VerifyPeerCertificate func(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error

	// MaxSessions bounds the sessions of this listener, handshakes in
	// progress included; a new one beyond it is dropped before its
	// handshake starts. Default DefaultDTLSMaxSessions.
	MaxSessions int

	// MaxHandshakesPerSource bounds the handshakes in progress from one IP
	// address. Default DefaultDTLSMaxHandshakesPerSource.
	MaxHandshakesPerSource int

	// HandshakeTimeout bounds one handshake. Default
	// DefaultDTLSHandshakeTimeout.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a session that exchanged nothing for that long
	// and has no observers. Default DefaultDTLSIdleTimeout.
	IdleTimeout time.Duration
}

func (c DTLSConfig) withDefaults() DTLSConfig {
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultDTLSMaxSessions
	}
	if c.MaxHandshakesPerSource == 0 {
		c.MaxHandshakesPerSource = DefaultDTLSMaxHandshakesPerSource
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultDTLSHandshakeTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultDTLSIdleTimeout
	}
	return c
}

// validate reports every problem of a defaulted DTLSConfig at once.
func (c DTLSConfig) validate() error {
	var errs []error
	if c.PSK == nil && c.Certificate == nil {
		errs = append(errs, errors.New("no credentials: set PSK, Certificate, or both"))
	}
	if c.Certificate != nil {
		if err := checkP256(c.Certificate); err != nil {
			errs = append(errs, err)
		}
		if c.ClientCAs == nil {
			errs = append(errs, errors.New("a certificate without ClientCAs: client certificates could not be verified"))
		}
	} else if c.VerifyPeerCertificate != nil {
		errs = append(errs, errors.New("VerifyPeerCertificate without a certificate: there is no certificate handshake to check"))
	}
	if c.MaxSessions < 0 || c.MaxHandshakesPerSource < 0 {
		errs = append(errs, errors.New("MaxSessions and MaxHandshakesPerSource must not be negative"))
	}
	if c.HandshakeTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("HandshakeTimeout and IdleTimeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dtls config: %w", err)
	}
	return nil
}

// checkP256 accepts a certificate whose key is ECDSA on P-256, the curve of
// the certificate cipher suites.
func checkP256(c *tls.Certificate) error {
	if len(c.Certificate) == 0 {
		return errors.New("the certificate has no certificate data")
	}
	k, ok := c.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("certificate key is %T, want an ECDSA P-256 key", c.PrivateKey)
	}
	return nil
}

// serverOptions are the pion options for c.
func (c DTLSConfig) serverOptions(log *slog.Logger) []piondtls.ServerOption {
	var suites []piondtls.CipherSuiteID
	opts := []piondtls.ServerOption{
		piondtls.WithExtendedMasterSecret(piondtls.RequireExtendedMasterSecret),
		piondtls.WithLoggerFactory(slogFactory{log}),
	}
	if c.PSK != nil {
		suites = append(suites, PSKCipherSuites...)
		opts = append(opts, piondtls.WithPSK(c.PSK))
	}
	if c.Certificate != nil {
		suites = append(suites, CertificateCipherSuites...)
		opts = append(opts,
			piondtls.WithCertificates(*c.Certificate),
			piondtls.WithClientCAs(c.ClientCAs),
			piondtls.WithClientAuth(piondtls.RequireAndVerifyClientCert))
		if c.VerifyPeerCertificate != nil {
			opts = append(opts, piondtls.WithVerifyPeerCertificate(c.VerifyPeerCertificate))
		}
	}
	return append(opts, piondtls.WithCipherSuites(suites...))
}

// ListenDTLS binds a UDP socket ("udp", "udp4" or "udp6"; addr as for
// Listen, e.g. "127.0.0.1:0" or ":5684") and serves CoAPs on it with cfg.
// It returns the bound address; /oic/res lists it as a coaps endpoint.
// Requests over it carry the Peer the handshake authenticated. ctx bounds
// the bind only; the listener runs until Close.
func (s *Server) ListenDTLS(ctx context.Context, network, addr string, cfg DTLSConfig) (net.Addr, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("listen dtls %s %s: network must be udp, udp4 or udp6", network, addr)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("listen dtls %s %s: %w", network, addr, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("listen dtls %s %s: %w", network, addr, err)
	}
	laddr, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen dtls %s %s: %w", network, addr, err)
	}
	inner, err := piondtls.ListenWithOptions(network, laddr, cfg.serverOptions(s.cfg.Logger)...)
	if err != nil {
		return nil, fmt.Errorf("listen dtls %s %s: %w", network, addr, err)
	}
	bound, ok := inner.Addr().(*net.UDPAddr)
	if !ok {
		_ = inner.Close()
		return nil, fmt.Errorf("listen dtls %s %s: unexpected %T", network, addr, inner.Addr())
	}
	dl := &dtlsListener{inner: inner, limits: cfg, log: s.cfg.Logger, handshaking: make(map[netip.Addr]int),
		conns: make(map[*dtlsConn]struct{})}
	l := &listener{network: network, scheme: "coaps", addr: bound, dtls: dl}
	srv := coapDTLS.NewServer(s.dtlsCoAPConfig(l, cfg))
	l.srv = srv
	serve := func() error {
		err := srv.Serve(dl)
		_ = dl.Close() // Stop may have run before Serve took the listener
		return err
	}
	if err := s.start(l, serve, dl.Close); err != nil {
		return nil, fmt.Errorf("listen dtls %s %s: %w", network, addr, err)
	}
	s.cfg.Logger.Info("listening", "network", network, "addr", l.addr.String(), "scheme", "coaps",
		"psk", cfg.PSK != nil, "certificate", cfg.Certificate != nil,
		"verify_peer_certificate", cfg.Certificate != nil && cfg.VerifyPeerCertificate != nil)
	return l.addr, nil
}

// dtlsListener hands go-coap the DTLS sessions it admits. Pion creates a
// connection for every source address whose first datagram is a
// handshake record; one beyond the bounds is closed here before its
// handshake starts, which costs the device nothing but the ClientHello.
type dtlsListener struct {
	inner  net.Listener
	limits DTLSConfig
	log    *slog.Logger
	closed atomic.Bool

	mu          sync.Mutex
	sessions    int                // admitted and not closed, handshaking or not
	handshaking map[netip.Addr]int // handshakes in progress per source IP
	refused     int                // sessions refused so far (for tests and debugging)
	conns       map[*dtlsConn]struct{}
}

// AcceptWithContext returns the next admitted session; go-coap runs its
// handshake (HandshakeContext) and then serves it.
func (l *dtlsListener) AcceptWithContext(ctx context.Context) (net.Conn, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed.Load() {
				// go-coap stops its accept loop on this error only.
				return nil, coapNet.ErrListenerIsClosed
			}
			return nil, fmt.Errorf("accept dtls: %w", err)
		}
		pc, ok := c.(*piondtls.Conn)
		if !ok {
			_ = c.Close()
			continue
		}
		src := sourceIP(c.RemoteAddr())
		if reason := l.admit(src); reason != "" {
			l.log.Debug("coaps session refused", "peer", c.RemoteAddr().String(), "reason", reason)
			_ = c.Close()
			continue
		}
		dc := &dtlsConn{Conn: pc, l: l, src: src}
		l.mu.Lock()
		l.conns[dc] = struct{}{}
		l.mu.Unlock()
		return dc, nil
	}
}

// admit counts a new session from src in, or says why not.
func (l *dtlsListener) admit(src netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.sessions >= l.limits.MaxSessions:
		l.refused++
		return "session limit reached"
	case l.handshaking[src] >= l.limits.MaxHandshakesPerSource:
		l.refused++
		return "handshake limit of the source reached"
	}
	l.sessions++
	l.handshaking[src]++
	return ""
}

func (l *dtlsListener) handshakeDone(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.handshaking[src]--; l.handshaking[src] <= 0 {
		delete(l.handshaking, src)
	}
}

func (l *dtlsListener) sessionClosed(c *dtlsConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions--
	delete(l.conns, c)
}

// closeSessions closes every admitted session and returns how many.
func (l *dtlsListener) closeSessions() int {
	l.mu.Lock()
	conns := make([]*dtlsConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

// counts reports the sessions open and refused.
func (l *dtlsListener) counts() (open, refused int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions, l.refused
}

// Close stops accepting; sessions already accepted are go-coap's to close.
func (l *dtlsListener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	return l.inner.Close()
}

func sourceIP(a net.Addr) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ua.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// dtlsConn is an admitted session. It gives its handshake slot back when
// the handshake ends and its session slot when it closes, and remembers
// who the handshake authenticated.
type dtlsConn struct {
	*piondtls.Conn
	l   *dtlsListener
	src netip.Addr

	handshakeOnce sync.Once
	closeOnce     sync.Once

	mu     sync.Mutex
	auth   string
	ident  string
	authed bool
}

// HandshakeContext runs the handshake (go-coap calls it with its handshake
// timeout) and derives the peer's identity.
func (c *dtlsConn) HandshakeContext(ctx context.Context) error {
	err := c.Conn.HandshakeContext(ctx)
	c.endHandshake()
	if err != nil {
		return fmt.Errorf("dtls handshake: %w", err)
	}
	auth, ident, err := peerIdentity(c.Conn)
	if err != nil {
		return fmt.Errorf("dtls handshake: %w", err)
	}
	c.mu.Lock()
	c.auth, c.ident, c.authed = auth, ident, true
	c.mu.Unlock()
	return nil
}

func (c *dtlsConn) endHandshake() {
	c.handshakeOnce.Do(func() { c.l.handshakeDone(c.src) })
}

// identity returns how the peer authenticated and who it is; ok is false
// before a successful handshake.
func (c *dtlsConn) identity() (auth, ident string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth, c.ident, c.authed
}

// Close releases the session's slots and closes the DTLS connection.
func (c *dtlsConn) Close() error {
	c.closeOnce.Do(func() {
		c.endHandshake()
		c.l.sessionClosed(c)
	})
	return c.Conn.Close()
}

// peerIdentity derives the Peer identity from a completed handshake: the
// common name of a verified client certificate, else the PSK identity the
// client sent.
func peerIdentity(c *piondtls.Conn) (auth, ident string, err error) {
	st, ok := c.ConnectionState()
	if !ok {
		return "", "", errors.New("no connection state")
	}
	if len(st.PeerCertificates) > 0 {
		leaf, err := x509.ParseCertificate(st.PeerCertificates[0])
		if err != nil {
			return "", "", fmt.Errorf("client certificate: %w", err)
		}
		return AuthCert, leaf.Subject.CommonName, nil
	}
	if len(st.IdentityHint) > 0 {
		return AuthPSK, string(st.IdentityHint), nil
	}
	return "", "", errors.New("the peer presented neither a certificate nor a PSK identity")
}

// slogFactory sends pion's log lines to the Server's logger at debug level:
// what pion reports (failed handshakes, alerts) is an event of a peer, not
// an error of the device, and go-coap reports the same failures.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{f.log.With("pion", scope)}
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) logf(format string, a ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, a...))
	}
}

func (l slogLogger) Trace(string)                   {}
func (l slogLogger) Tracef(string, ...any)          {}
func (l slogLogger) Debug(msg string)               { l.log.Debug(msg) }
func (l slogLogger) Debugf(format string, a ...any) { l.logf(format, a...) }
func (l slogLogger) Info(msg string)                { l.log.Debug(msg) }
func (l slogLogger) Infof(format string, a ...any)  { l.logf(format, a...) }
func (l slogLogger) Warn(msg string)                { l.log.Debug(msg) }
func (l slogLogger) Warnf(format string, a ...any)  { l.logf(format, a...) }
func (l slogLogger) Error(msg string)               { l.log.Debug(msg) }
func (l slogLogger) Errorf(format string, a ...any) { l.logf(format, a...) }
