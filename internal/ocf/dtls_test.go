package ocf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/options"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

var (
	testPSKIdentity = "operator"
	testPSK         = []byte("0123456789abcdef")
)

// pskLookup knows testPSKIdentity only.
func pskLookup(id []byte) ([]byte, error) {
	if string(id) != testPSKIdentity {
		return nil, errors.New("unknown identity")
	}
	return testPSK, nil
}

// startSecure starts a Server with a plain CoAP and a CoAPs listener on
// 127.0.0.1, and returns both addresses.
func startSecure(t testing.TB, cfg Config, dcfg DTLSConfig, res ...Resource) (s *Server, plain, secure string) {
	t.Helper()
	s, plain = startServer(t, cfg, res...)
	addr, err := s.ListenDTLS(context.Background(), "udp4", "127.0.0.1:0", dcfg)
	if err != nil {
		t.Fatalf("ListenDTLS: %v", err)
	}
	return s, plain, addr.String()
}

// dtlsOf returns the CoAPs listener of s.
func dtlsOf(t testing.TB, s *Server) *dtlsListener {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, l := range s.listeners {
		if l.dtls != nil {
			return l.dtls
		}
	}
	t.Fatal("no DTLS listener")
	return nil
}

func pskClient(identity string, key []byte) []piondtls.ClientOption {
	return []piondtls.ClientOption{
		piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
		piondtls.WithPSKIdentityHint([]byte(identity)),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
	}
}

func certClient(cert tls.Certificate, roots *credstest.CA) []piondtls.ClientOption {
	return []piondtls.ClientOption{
		piondtls.WithCertificates(cert),
		piondtls.WithRootCAs(roots.Pool()),
		piondtls.WithServerName("127.0.0.1"),
		piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
	}
}

// Handshake bounds: generous for handshakes that should succeed; short for
// those that should fail, since a server that refuses a session or cannot
// decrypt a handshake stays silent and the client can only time out.
const (
	handshakeOK   = 10 * time.Second
	handshakeFail = 1500 * time.Millisecond
)

// dialDTLS connects a go-coap DTLS client and completes the handshake
// within handshakeOK; the connection and its goroutines end at cleanup. A
// handshake that fails is returned as an error.
func dialDTLS(t testing.TB, addr string, opts []piondtls.ClientOption) (*udpClient.Conn, error) {
	t.Helper()
	return dialDTLSWithin(t, addr, opts, handshakeOK)
}

// failDTLS is dialDTLS for a handshake expected to fail.
func failDTLS(t testing.TB, addr string, opts []piondtls.ClientOption) error {
	t.Helper()
	_, err := dialDTLSWithin(t, addr, opts, handshakeFail)
	return err
}

func dialDTLSWithin(t testing.TB, addr string, opts []piondtls.ClientOption, bound time.Duration) (*udpClient.Conn, error) {
	t.Helper()
	runner := coaprun.New(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cc, err := coapsdial.DialOptions(ctx, addr, opts,
		options.WithPeriodicRunner(runner.Func),
		options.WithErrors(func(err error) { t.Logf("dtls client: %v", err) }),
	)
	if err != nil {
		runner.Stop()
		return nil, err
	}
	t.Cleanup(func() {
		_ = cc.Close()
		<-cc.Done()
		runner.Stop()
	})
	return cc, nil
}

func mustDialDTLS(t testing.TB, addr string, opts []piondtls.ClientOption) *udpClient.Conn {
	t.Helper()
	cc, err := dialDTLS(t, addr, opts)
	if err != nil {
		t.Fatalf("DTLS handshake: %v", err)
	}
	return cc
}

// TestDTLSPeerIdentity: a handshake with a known PSK or a certificate from
// a trusted CA succeeds and the resource sees who the peer is; a wrong key,
// an unknown identity, a certificate from another CA or none at all fail
// the handshake, and nothing is served.
func TestDTLSPeerIdentity(t *testing.T) {
	ca := credstest.NewCA(t, "operators")
	other := credstest.NewCA(t, "strangers")
	dev := ca.TLSCertificate(t, "uuid:"+testDI)
	res := newFake("/who")
	_, _, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup, Certificate: &dev, ClientCAs: ca.Pool()}, res)

	for _, tt := range []struct {
		name string
		opts []piondtls.ClientOption
		want *Peer // nil: the handshake fails
	}{
		{"psk", pskClient(testPSKIdentity, testPSK), &Peer{Secure: true, Auth: AuthPSK, Identity: testPSKIdentity}},
		{"psk with the ECDHE suite", append(pskClient(testPSKIdentity, testPSK),
			piondtls.WithCipherSuites(piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256)),
			&Peer{Secure: true, Auth: AuthPSK, Identity: testPSKIdentity}},
		{"certificate", certClient(ca.TLSCertificate(t, "alice"), ca), &Peer{Secure: true, Auth: AuthCert, Identity: "alice"}},
		{"wrong psk", pskClient(testPSKIdentity, []byte("fedcba9876543210")), nil},
		{"unknown identity", pskClient("mallory", testPSK), nil},
		{"certificate from an unknown CA", certClient(other.TLSCertificate(t, "alice"), ca), nil},
		{"no client certificate", []piondtls.ClientOption{
			piondtls.WithRootCAs(ca.Pool()), piondtls.WithServerName("127.0.0.1"),
			piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(res.requests())
			if tt.want == nil {
				if err := failDTLS(t, addr, tt.opts); err == nil {
					t.Fatal("handshake succeeded")
				}
				if n := len(res.requests()); n != before {
					t.Fatalf("%d requests served", n-before)
				}
				return
			}
			cc := mustDialDTLS(t, addr, tt.opts)
			if m := do(t, cc, call{method: codes.GET, path: "/who", cf: -1}); m.Code() != codes.Content {
				t.Fatalf("GET over CoAPs: %v", m.Code())
			}
			reqs := res.requests()
			got := reqs[len(reqs)-1].Peer
			if got.Secure != tt.want.Secure || got.Auth != tt.want.Auth || got.Identity != tt.want.Identity ||
				got.Addr != cc.LocalAddr().String() {
				t.Fatalf("peer %+v, want %+v from %s", got, *tt.want, cc.LocalAddr())
			}
		})
	}
}

// TestDTLSVerifyPeerCertificate: the hook sees the verified chain of every
// certificate handshake (leaf, then the CA) and its error fails the
// handshake; PSK handshakes never reach it.
func TestDTLSVerifyPeerCertificate(t *testing.T) {
	ca := credstest.NewCA(t, "operators")
	dev := ca.TLSCertificate(t, "uuid:"+testDI)
	var mu sync.Mutex
	var seen []string // leaf CN and issuer CN of each call
	verify := func(raw [][]byte, chains [][]*x509.Certificate) error {
		mu.Lock()
		defer mu.Unlock()
		if len(raw) == 0 || len(chains) != 1 || len(chains[0]) != 2 || !chains[0][1].Equal(ca.Cert) {
			seen = append(seen, "unexpected chains")
			return errors.New("unexpected chains")
		}
		leaf := chains[0][0].Subject.CommonName
		seen = append(seen, leaf)
		if leaf == "mallory" {
			return errors.New("mallory is revoked")
		}
		return nil
	}
	res := newFake("/who")
	_, _, addr := startSecure(t, testConfig(t),
		DTLSConfig{PSK: pskLookup, Certificate: &dev, ClientCAs: ca.Pool(), VerifyPeerCertificate: verify}, res)

	cc := mustDialDTLS(t, addr, certClient(ca.TLSCertificate(t, "alice"), ca))
	if m := do(t, cc, call{method: codes.GET, path: "/who", cf: -1}); m.Code() != codes.Content {
		t.Fatalf("GET as alice: %v", m.Code())
	}
	if err := failDTLS(t, addr, certClient(ca.TLSCertificate(t, "mallory"), ca)); err == nil {
		t.Fatal("the handshake of a certificate the hook refused succeeded")
	}
	mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"alice", "mallory"}) {
		t.Fatalf("hook calls %q, want alice then mallory", seen)
	}
	for _, r := range res.requests() {
		if r.Peer.Identity == "mallory" {
			t.Fatal("a request of mallory was served")
		}
	}
}

// recordingAuthorizer allows what allow says and records every call.
type recordingAuthorizer struct {
	allow func(p Peer, href string, method codes.Code) bool

	mu    sync.Mutex
	calls []authCall
}

type authCall struct {
	peer    Peer
	href    string
	method  codes.Code
	observe bool
}

func (a *recordingAuthorizer) Authorize(p Peer, href string, method codes.Code, observe bool) codes.Code {
	a.mu.Lock()
	a.calls = append(a.calls, authCall{p, href, method, observe})
	a.mu.Unlock()
	if a.allow(p, href, method) {
		return codes.Empty
	}
	if !p.Secure {
		return codes.Unauthorized
	}
	return codes.Forbidden
}

func (a *recordingAuthorizer) last() authCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[len(a.calls)-1]
}

// TestDTLSAuthorizer: the Authorizer sees the authenticated peer and the
// Observe flag; its denials are answered with a Diagnostic and never reach
// the resource, Block1 transfers included.
func TestDTLSAuthorizer(t *testing.T) {
	auth := &recordingAuthorizer{allow: func(p Peer, href string, m codes.Code) bool {
		return strings.HasPrefix(href, "/oic/") || (p.Secure && (m == codes.GET || p.Identity == "admin"))
	}}
	cfg := testConfig(t)
	cfg.Authorizer = auth
	res := newCounter("/secret")
	s, plain, secure := startSecure(t, cfg, DTLSConfig{PSK: func(id []byte) ([]byte, error) { return testPSK, nil }}, res)

	anon := dial(t, plain, false)
	if m := do(t, anon, call{method: codes.GET, path: "/oic/d", cf: -1}); m.Code() != codes.Content {
		t.Fatalf("anonymous GET /oic/d: %v", m.Code())
	}
	for _, c := range []call{
		{method: codes.GET, path: "/secret", cf: -1},
		{method: codes.POST, path: "/secret", cf: 60, body: mustEncode(t, map[string]any{"x": 1})},
		// The first block of a large body: refused at once, not buffered.
		{method: codes.POST, path: "/secret", cf: 60, body: make([]byte, 16), opts: []message.Option{uintOpt(message.Block1, 1<<3)}}, // Block1: num 0, more, szx 0
	} {
		m := do(t, anon, c)
		if m.Code() != codes.Unauthorized || diagnostic(t, m).Error == "" {
			t.Errorf("anonymous %v %s: %v, want 4.01 with a diagnostic", c.method, c.path, m.Code())
		}
	}
	if n := len(res.requests()); n != 0 {
		t.Fatalf("the resource served %d denied requests", n)
	}

	reader := mustDialDTLS(t, secure, pskClient("reader", testPSK))
	if m := do(t, reader, call{method: codes.POST, path: "/secret", cf: 60, body: mustEncode(t, map[string]any{"x": 1})}); m.Code() != codes.Forbidden {
		t.Fatalf("reader POST: %v, want 4.03", m.Code())
	}
	var col collector
	obs, err := reader.Observe(ctxT(t), "/secret", func(m *pool.Message) { col.add(decodeNotification(t, m)) })
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Cancel(ctxT(t))
	if c := auth.last(); !c.observe || c.peer.Identity != "reader" || c.peer.Auth != AuthPSK || c.method != codes.GET {
		t.Fatalf("registration authorized as %+v", c)
	}
	res.n.Store(7)
	s.Notify("/secret")
	eventually(t, "notification over CoAPs", func() bool { n, ok := col.last(); return ok && n.n == 7 })

	admin := mustDialDTLS(t, secure, pskClient("admin", testPSK))
	if m := do(t, admin, call{method: codes.POST, path: "/secret", cf: 60, body: mustEncode(t, map[string]any{"x": 1})}); m.Code() != codes.Changed {
		t.Fatalf("admin POST: %v", m.Code())
	}
}

// TestDTLSDiscoveryEndpoints: /oic/res lists the coaps endpoint for every
// resource, and the coap one only for those an anonymous peer may read.
func TestDTLSDiscoveryEndpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.Authorizer = &recordingAuthorizer{allow: func(p Peer, href string, _ codes.Code) bool {
		return p.Secure || strings.HasPrefix(href, "/oic/")
	}}
	_, plain, secure := startSecure(t, cfg, DTLSConfig{PSK: pskLookup}, newFake("/secret"))
	var links []link
	if err := Decode(body(t, do(t, dial(t, plain, true), call{method: codes.GET, path: "/oic/res", cf: -1})), &links); err != nil {
		t.Fatal(err)
	}
	eps := map[string][]string{}
	for _, l := range links {
		for _, e := range l.EPS {
			eps[l.Href] = append(eps[l.Href], e.EP)
		}
	}
	both := []string{"coap://" + plain, "coaps://" + secure}
	if !slices.Equal(eps["/oic/d"], both) || !slices.Equal(eps["/secret"], both[1:]) {
		t.Fatalf("eps %v", eps)
	}
}

// stallHandshake starts a handshake from 127.0.0.1 that never completes:
// the client sends its ClientHello but reads nothing. cancel stops the
// client (the server's side lasts until its handshake timeout).
func stallHandshake(t *testing.T, addr string) (cancel func()) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := piondtls.ClientWithOptions(deafConn{pc}, raddr, pskClient(testPSKIdentity, testPSK)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.HandshakeContext(ctx)
	}()
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			stop()
			<-done
			_ = c.Close()
			_ = pc.Close()
		})
	}
	t.Cleanup(cancel)
	return cancel
}

// deafConn sends but never delivers what it receives.
type deafConn struct{ *net.UDPConn }

func (d deafConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if _, _, err := d.UDPConn.ReadFrom(b); err != nil {
			return 0, nil, err
		}
	}
}

// TestDTLSBounds: handshakes beyond the per-source limit and sessions
// beyond the total are refused; a handshake that times out, a closed
// session and an idle one give their slots back.
func TestDTLSBounds(t *testing.T) {
	t.Run("handshakes per source", func(t *testing.T) {
		s, _, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup, MaxHandshakesPerSource: 1, HandshakeTimeout: time.Hour})
		l := dtlsOf(t, s)
		stallHandshake(t, addr)
		eventually(t, "stalled handshake admitted", func() bool { open, _ := l.counts(); return open == 1 })
		if err := failDTLS(t, addr, pskClient(testPSKIdentity, testPSK)); err == nil {
			t.Fatal("a second handshake from the same source succeeded")
		}
		if _, refused := l.counts(); refused == 0 {
			t.Fatal("nothing refused")
		}
	})

	t.Run("handshake timeout frees the slot", func(t *testing.T) {
		s, _, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup, MaxHandshakesPerSource: 1, HandshakeTimeout: 200 * time.Millisecond})
		l := dtlsOf(t, s)
		cancel := stallHandshake(t, addr)
		eventually(t, "stalled handshake admitted", func() bool { open, _ := l.counts(); return open == 1 })
		cancel() // no more ClientHellos: the server's handshake times out alone
		eventually(t, "stalled handshake timed out", func() bool { open, _ := l.counts(); return open == 0 })
		mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	})

	t.Run("sessions", func(t *testing.T) {
		s, _, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup, MaxSessions: 1})
		l := dtlsOf(t, s)
		first := mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
		if err := failDTLS(t, addr, pskClient(testPSKIdentity, testPSK)); err == nil {
			t.Fatal("a session beyond the limit succeeded")
		}
		if _, refused := l.counts(); refused == 0 {
			t.Fatal("nothing refused")
		}
		_ = first.Close()
		eventually(t, "closed session released", func() bool { open, _ := l.counts(); return open == 0 })
		mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	})

	t.Run("idle session closed", func(t *testing.T) {
		s, _, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup, IdleTimeout: 200 * time.Millisecond})
		l := dtlsOf(t, s)
		cc := mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
		if m := do(t, cc, call{method: codes.GET, path: "/oic/d", cf: -1}); m.Code() != codes.Content {
			t.Fatalf("GET: %v", m.Code())
		}
		eventually(t, "idle session closed by the server", func() bool { open, _ := l.counts(); return open == 0 })
		select {
		case <-cc.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the client was not told (close_notify)")
		}
	})
}

// TestCloseSecureSessions: every CoAPs session ends, its observer with it,
// the client is told, and a new handshake works; plain CoAP is untouched.
func TestCloseSecureSessions(t *testing.T) {
	res := newCounter("/count")
	s, plain, addr := startSecure(t, testConfig(t), DTLSConfig{PSK: pskLookup}, res)
	l := dtlsOf(t, s)
	a := mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	b := mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	if _, err := a.Observe(context.Background(), "/count", func(*pool.Message) {}); err != nil {
		t.Fatalf("observe: %v", err)
	}
	eventually(t, "observer registered", func() bool { return s.obs.count() == 1 })
	if m := do(t, b, call{method: codes.GET, path: "/oic/d", cf: -1}); m.Code() != codes.Content {
		t.Fatalf("GET: %v", m.Code())
	}
	p := dial(t, plain, true)
	if n := s.CloseSecureSessions(); n != 2 {
		t.Fatalf("closed %d sessions, want 2", n)
	}
	eventually(t, "sessions released", func() bool { open, _ := l.counts(); return open == 0 })
	eventually(t, "observer removed", func() bool { return s.obs.count() == 0 })
	for _, cc := range []*udpClient.Conn{a, b} {
		select {
		case <-cc.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a client was not told (close_notify)")
		}
	}
	c := mustDialDTLS(t, addr, pskClient(testPSKIdentity, testPSK))
	if m := do(t, c, call{method: codes.GET, path: "/oic/d", cf: -1}); m.Code() != codes.Content {
		t.Fatalf("GET after a new handshake: %v", m.Code())
	}
	if m := do(t, p, call{method: codes.GET, path: "/oic/d", cf: -1}); m.Code() != codes.Content {
		t.Fatalf("plain CoAP GET: %v", m.Code())
	}
}

// TestDTLSConfigValidate: ListenDTLS refuses configurations that could not
// authenticate anybody, or only with the wrong key type.
func TestDTLSConfigValidate(t *testing.T) {
	ca := credstest.NewCA(t, "ca")
	cert := ca.TLSCertificate(t, "device")
	s, err := NewServer(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tt := range []struct {
		name string
		cfg  DTLSConfig
		want string
	}{
		{"no credentials", DTLSConfig{}, "no credentials"},
		{"certificate without CAs", DTLSConfig{Certificate: &cert}, "ClientCAs"},
		{"not ECDSA", DTLSConfig{Certificate: &tls.Certificate{Certificate: cert.Certificate, PrivateKey: "rsa?"}, ClientCAs: ca.Pool()}, "P-256"},
		{"negative limit", DTLSConfig{PSK: pskLookup, MaxSessions: -1}, "negative"},
		{"certificate check without a certificate", DTLSConfig{PSK: pskLookup,
			VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}, "VerifyPeerCertificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ListenDTLS(context.Background(), "udp4", "127.0.0.1:0", tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := s.ListenDTLS(context.Background(), "tcp", "127.0.0.1:0", DTLSConfig{PSK: pskLookup}); err == nil {
		t.Fatal("tcp accepted")
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
