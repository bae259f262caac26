package tufrepo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
)

var testPSK = []byte("0123456789abcdef")

// pskOptions are the DTLS options of both ends, with key psk.
func pskOptions(psk []byte) ([]piondtls.ServerOption, []piondtls.ClientOption) {
	opts := []piondtls.Option{
		piondtls.WithPSK(func([]byte) ([]byte, error) { return psk, nil }),
		piondtls.WithPSKIdentityHint([]byte("device")),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
	}
	srv := make([]piondtls.ServerOption, 0, len(opts))
	cli := make([]piondtls.ClientOption, 0, len(opts))
	for _, o := range opts {
		srv = append(srv, o)
		cli = append(cli, o)
	}
	return srv, cli
}

// errorSink collects what a server reports to ServeOptions.Errors.
type errorSink chan error

func (e errorSink) report(err error) {
	select {
	case e <- err:
	default: // a test that does not read them must not block the server
	}
}

// waitError returns the first reported error whose text contains want.
func (e errorSink) waitError(t testing.TB, want string) error {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second) // a bound on a hang, not a timed assertion
	defer timeout.Stop()
	for {
		select {
		case err := <-e:
			if strings.Contains(err.Error(), want) {
				return err
			}
		case <-timeout.C:
			t.Fatalf("no error containing %q reported", want)
			return nil
		}
	}
}

// coapsServer is a running ServeCoAPs.
type coapsServer struct {
	addr   string
	errs   errorSink
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels the server and returns what ServeCoAPs returned.
func (s *coapsServer) stop() error {
	s.once.Do(func() {
		s.cancel()
		s.err = <-s.done
	})
	return s.err
}

// startCoAPs serves dir over DTLS with testPSK until the test ends.
func startCoAPs(t testing.TB, dir string, lim sessionLimits) *coapsServer {
	t.Helper()
	srvOpts, _ := pskOptions(testPSK)
	ln, err := coapNet.NewDTLSListener("udp", "127.0.0.1:0", coapNet.NewDTLSServerOptions(srvOpts...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &coapsServer{addr: ln.Addr().String(), errs: make(errorSink, 64), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- serveCoAPs(ctx, ln, dir, ServeOptions{Errors: s.errs.report}, lim) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("ServeCoAPs: %v", err)
		}
	})
	return s
}

// dialCoAPs is a go-coap DTLS client.
func dialCoAPs(t testing.TB, addr string) *udpClient.Conn {
	t.Helper()
	_, cliOpts := pskOptions(testPSK)
	ticker := coaprun.New(100 * time.Millisecond)
	cc, err := dtls.Dial(addr, dtls.NewDTLSClientOptions(cliOpts...),
		options.WithBlockwise(false, blockwise.SZX1024, time.Minute),
		options.WithErrors(func(error) {}), options.WithPeriodicRunner(ticker.Func))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); <-cc.Done(); ticker.Stop() })
	return cc
}

// rawDTLS is a bare pion client that has shaken hands with addr. It is
// closed when the test ends.
func rawDTLS(t testing.TB, ctx context.Context, addr string, psk []byte) (*piondtls.Conn, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	_, cliOpts := pskOptions(psk)
	c, err := piondtls.DialWithOptions("udp", raddr, cliOpts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, c.HandshakeContext(ctx)
}

// getTimestamp sends one CON GET over c and returns the response.
func getTimestamp(t testing.TB, c net.Conn, mid int32) message.Message {
	t.Helper()
	if _, err := c.Write(encodeReq(t, message.Confirmable, codes.GET, mid, []byte{1}, pathOpts("/metadata/timestamp.json")...)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return decodeResp(t, bytes.Clone(buf[:n]))
}

func TestCoAPsBlock2Fetch(t *testing.T) {
	f := newFixture(t, InitOptions{})
	p, data := packagePath(t, f)
	srv := startCoAPs(t, f.dir, defaultSessionLimits)
	cc := dialCoAPs(t, srv.addr)
	for _, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
		got, _ := fetchAll(t, cc, p, blockwise.SZX1024, typ)
		if !bytes.Equal(got, data) {
			t.Fatalf("%v: CoAPs fetch differs from the package", typ)
		}
	}
}

// A session that sends nothing for the idle timeout is closed by the
// server (the client sees close_notify).
func TestCoAPsIdleSessionEnds(t *testing.T) {
	f := newFixture(t, InitOptions{})
	lim := defaultSessionLimits
	lim.idle = 200 * time.Millisecond
	srv := startCoAPs(t, f.dir, lim)
	c, err := rawDTLS(t, context.Background(), srv.addr, testPSK)
	if err != nil {
		t.Fatal(err)
	}
	if m := getTimestamp(t, c, 1); m.Code != codes.Content {
		t.Fatalf("GET: %v", m.Code)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 2048)); !errors.Is(err, io.EOF) {
		t.Fatalf("idle session: read %v, want EOF from close_notify", err)
	}
}

// Beyond the session bound a new client is refused, and the error says so;
// the sessions already open keep working.
func TestCoAPsSessionLimit(t *testing.T) {
	f := newFixture(t, InitOptions{})
	lim := defaultSessionLimits
	lim.max = 1
	srv := startCoAPs(t, f.dir, lim)
	first, err := rawDTLS(t, context.Background(), srv.addr, testPSK)
	if err != nil {
		t.Fatal(err)
	}
	if m := getTimestamp(t, first, 1); m.Code != codes.Content {
		t.Fatalf("GET: %v", m.Code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := rawDTLS(t, ctx, srv.addr, testPSK)
		done <- err
	}()
	srv.errs.waitError(t, "refused")
	cancel()
	if err := <-done; err == nil {
		t.Fatal("second session shook hands beyond the bound of 1")
	}
	if m := getTimestamp(t, first, 2); m.Code != codes.Content {
		t.Fatalf("first session after the refusal: %v", m.Code)
	}
}

// A handshake that does not complete (here: the client has another key,
// so the server cannot decrypt its Finished) ends after the handshake
// timeout and is reported.
func TestCoAPsHandshakeFailureReported(t *testing.T) {
	f := newFixture(t, InitOptions{})
	lim := defaultSessionLimits
	lim.handshake = 200 * time.Millisecond
	srv := startCoAPs(t, f.dir, lim)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := rawDTLS(t, ctx, srv.addr, []byte("wrong key 123456"))
		done <- err
	}()
	srv.errs.waitError(t, "handshake")
	cancel()
	if err := <-done; err == nil {
		t.Fatal("handshake with a wrong key succeeded")
	}
}

// Cancelling the context closes the listener and every open session.
func TestServeCoAPsClosesSessionsOnCancel(t *testing.T) {
	f := newFixture(t, InitOptions{})
	srv := startCoAPs(t, f.dir, defaultSessionLimits)
	c, err := rawDTLS(t, context.Background(), srv.addr, testPSK)
	if err != nil {
		t.Fatal(err)
	}
	if m := getTimestamp(t, c, 1); m.Code != codes.Content {
		t.Fatalf("GET: %v", m.Code)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("ServeCoAPs: %v", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 2048)); !errors.Is(err, io.EOF) {
		t.Fatalf("after shutdown: read %v, want EOF from close_notify", err)
	}
}

// A listener closed by someone else ends ServeCoAPs with an error.
func TestServeCoAPsListenerClosed(t *testing.T) {
	f := newFixture(t, InitOptions{})
	srvOpts, _ := pskOptions(testPSK)
	ln, err := coapNet.NewDTLSListener("udp", "127.0.0.1:0", coapNet.NewDTLSServerOptions(srvOpts...))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeCoAPs(context.Background(), ln, f.dir, ServeOptions{}) }()
	_ = ln.Close()
	if err := <-done; !errors.Is(err, coapNet.ErrListenerIsClosed) {
		t.Fatalf("ServeCoAPs after Close: %v, want ErrListenerIsClosed", err)
	}
}

func TestSessionSet(t *testing.T) {
	s := newSessionSet(2)
	a, b, c := &fakeConn{}, &fakeConn{}, &fakeConn{}
	if !s.add(a) || !s.add(b) {
		t.Fatal("refused below the bound")
	}
	if s.add(c) {
		t.Fatal("accepted beyond the bound")
	}
	s.remove(a)
	if !a.closed || !s.add(c) {
		t.Fatal("a removed session did not free its slot or was not closed")
	}
	s.closeAll()
	if !b.closed || !c.closed {
		t.Fatal("closeAll left sessions open")
	}
	if s.add(&fakeConn{}) {
		t.Fatal("accepted after closeAll")
	}
	s.remove(b)
	s.remove(c)
	s.wait() // returns: every add was matched by a remove
}

// fakeConn records Close.
type fakeConn struct {
	net.Conn
	closed bool
}

func (c *fakeConn) Close() error { c.closed = true; return nil }
