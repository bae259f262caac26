// Package client is the operator's library for devices running ocfupdated
// (or any OCF device with oic.r.softwareupdate). Every call takes a
// context; a device's refusal is a *DeviceError carrying its diagnostic
// (which property, and why).
//
//   - Discover finds devices by multicast (224.0.1.187 and ff02::158, port
//     5683) and at given endpoints, and reads what each runs (/oic/d) and
//     where its update stands.
//   - Open returns a Device: the software update resource, found through
//     /oic/res by its rt (never a fixed href), on a connection that is
//     dialled again whenever it breaks (a device restarting into its new
//     version closes its socket for a moment). Device reads (Info, Status),
//     updates (Update: purl, swupdateaction, updatetime), triggers through
//     pstat tm (Trigger), observes (Observe, Watch with a callback, Events
//     with a channel) and waits for an action to finish with progress
//     events (Wait).
//   - Rollout upgrades a fleet in waves with bounded concurrency, halts when
//     failures pass a threshold, and returns a per-device Report;
//     PlanRollout is its dry run.
//   - Conn is the low-level connection underneath: Get, Post, Observe,
//     Links, FindResource on any href.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// Conn is a connection to one device endpoint. It is safe for concurrent use.
type Conn struct {
	endpoint string
	cc       *udpClient.Conn
	runner   *coaprun.Runner // go-coap's housekeeping, stopped at Close
	close    sync.Once
}

// Response is a device's answer: the CoAP code and the raw CBOR body.
type Response struct {
	Code codes.Code
	Body []byte
}

// DeviceError is an error reply from a device, with its diagnostic.
type DeviceError struct {
	Code     codes.Code
	Message  string // the diagnostic's "error"
	Property string // the diagnostic's "property", if any
}

func (e *DeviceError) Error() string {
	s := fmt.Sprintf("device answered %v", e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Property != "" {
		s += " (property " + e.Property + ")"
	}
	return s
}

// ParseEndpoint accepts "coap://host:port", "host:port" or "host" (port
// 5683) and returns host:port. An IPv6 host may carry a zone
// ("[fe80::1%eth0]:5683", in a URL also escaped as "%25eth0"), as
// multicast discovery reports link-local devices. coaps:// endpoints are
// for DialSecure (see SplitEndpoint).
func ParseEndpoint(endpoint string) (string, error) {
	scheme, addr, err := SplitEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if scheme != SchemeCoAP {
		return "", fmt.Errorf("endpoint %q: scheme %q needs credentials (use coap://, or DialSecure)", endpoint, scheme)
	}
	return addr, nil
}

// URL schemes of device endpoints.
const (
	SchemeCoAP  = "coap"  // CoAP over UDP, default port 5683
	SchemeCoAPS = "coaps" // CoAP over DTLS, default port 5684
)

// SplitEndpoint accepts "coap://host:port", "coaps://host:port",
// "host:port" or "host" and returns the scheme (coap when none is given)
// and host:port, with the scheme's default port when none is given.
func SplitEndpoint(endpoint string) (scheme, addr string, err error) {
	ep := strings.TrimSpace(endpoint)
	scheme = SchemeCoAP
	if sc, rest, ok := strings.Cut(ep, "://"); ok {
		scheme = strings.ToLower(sc)
		if scheme != SchemeCoAP && scheme != SchemeCoAPS {
			return "", "", fmt.Errorf("endpoint %q: scheme %q not supported (use coap:// or coaps://)", endpoint, sc)
		}
		// Not url.Parse: it rejects a zone written with a bare "%".
		ep = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(ep, "/?#") {
			return "", "", fmt.Errorf("endpoint %q: must not have a path", endpoint)
		}
		ep = strings.ReplaceAll(ep, "%25", "%")
	}
	if ep == "" {
		return "", "", fmt.Errorf("endpoint %q: no host", endpoint)
	}
	if _, _, err := net.SplitHostPort(ep); err != nil {
		port := "5683"
		if scheme == SchemeCoAPS {
			port = "5684"
		}
		ep = net.JoinHostPort(strings.Trim(ep, "[]"), port)
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return "", "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("endpoint %q: no host", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("endpoint %q: bad port %q", endpoint, port)
	}
	return scheme, ep, nil
}

// Dial connects to endpoint over CoAP (UDP). ctx bounds only the dial.
// Devices serve only discovery and /oic/d to unauthenticated peers, unless
// configured otherwise: see DialSecure.
func Dial(ctx context.Context, endpoint string) (*Conn, error) {
	addr, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return dial(ctx, SchemeCoAP, addr, nil)
}

// coapOptions are the go-coap options of every connection.
func (c *Conn) coapOptions() []udp.Option {
	return []udp.Option{
		options.WithPeriodicRunner(c.runner.Func),
		options.WithBlockwise(true, 6, 30*time.Second), // responses such as /oic/res may span blocks
		options.WithErrors(func(error) {}),             // errors reach callers through return values
		options.WithContext(context.Background()),
	}
}

// dial opens a connection; sec is required for coaps.
func dial(ctx context.Context, scheme, addr string, sec *Security) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Conn{endpoint: scheme + "://" + addr, runner: coaprun.New(200 * time.Millisecond)}
	var cc *udpClient.Conn
	var err error
	if scheme == SchemeCoAPS {
		cc, err = dialDTLS(ctx, addr, sec, c.coapOptions())
	} else {
		cc, err = udp.Dial(addr, c.coapOptions()...)
		if err != nil {
			err = fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	if err != nil {
		c.runner.Stop()
		return nil, err
	}
	c.cc = cc
	return c, nil
}

// Endpoint is the coap:// URL of the device.
func (c *Conn) Endpoint() string { return c.endpoint }

// Broken reports whether the connection has ended by itself. go-coap ends
// a UDP connection for good when its socket fails, for example with
// ECONNREFUSED while the device restarts into a new version; every later
// request on it fails, so the caller must dial again (Device does).
func (c *Conn) Broken() bool {
	select {
	case <-c.cc.Done():
		return true
	default:
		return false
	}
}

// Close closes the connection and waits for its goroutines. Calling it
// again does nothing.
func (c *Conn) Close() error {
	var err error
	c.close.Do(func() {
		err = c.cc.Close()
		<-c.cc.Done()
		c.runner.Stop()
	})
	return err
}

// ocfOpts marks a request as OCF 1.0 content (options 2049, 2053).
func ocfOpts() message.Options {
	buf := make([]byte, 2)
	n, _ := message.EncodeUint32(buf, ocf.Version100)
	return message.Options{
		{ID: ocf.OptionAcceptVersion, Value: buf[:n]},
		{ID: message.Accept, Value: []byte{0x27, 0x10}}, // 10000
	}
}

func (c *Conn) newRequest(ctx context.Context, method codes.Code, href string, query []string) (*pool.Message, error) {
	req := c.cc.AcquireMessage(ctx)
	tok, err := message.GetToken()
	if err != nil {
		c.cc.ReleaseMessage(req)
		return nil, err
	}
	req.SetToken(tok)
	req.SetCode(method)
	req.SetType(message.Confirmable)
	if err := req.SetPath(href); err != nil {
		c.cc.ReleaseMessage(req)
		return nil, fmt.Errorf("href %q: %w", href, err)
	}
	for _, q := range query {
		req.AddQuery(q)
	}
	for _, o := range ocfOpts() {
		req.AddOptionBytes(o.ID, o.Value)
	}
	return req, nil
}

// do sends req and turns the reply into a Response, or a *DeviceError for
// an error code.
func (c *Conn) do(req *pool.Message) (Response, error) {
	defer c.cc.ReleaseMessage(req)
	resp, err := c.cc.Do(req)
	if err != nil {
		if c.Broken() {
			// go-coap's own message ("connection was closed: context
			// canceled") hides what happened.
			err = ErrConnectionLost
		}
		return Response{}, fmt.Errorf("%v %s: %w", req.Code(), c.endpoint, err)
	}
	defer c.cc.ReleaseMessage(resp)
	return toResponse(resp)
}

func toResponse(m *pool.Message) (Response, error) {
	r := Response{Code: m.Code()}
	if b, err := m.ReadBody(); err == nil {
		r.Body = b
	}
	if r.Code >= codes.BadRequest {
		de := &DeviceError{Code: r.Code}
		var d ocf.Diagnostic
		if len(r.Body) > 0 && ocf.Decode(r.Body, &d) == nil {
			de.Message, de.Property = d.Error, d.Property
		}
		return r, de
	}
	return r, nil
}

// Get reads href (with optional "key=value" queries).
func (c *Conn) Get(ctx context.Context, href string, query ...string) (Response, error) {
	req, err := c.newRequest(ctx, codes.GET, href, query)
	if err != nil {
		return Response{}, err
	}
	return c.do(req)
}

// Post sends body (encoded as CBOR, content format 10000) to href.
func (c *Conn) Post(ctx context.Context, href string, body any) (Response, error) {
	payload, err := ocf.Encode(body)
	if err != nil {
		return Response{}, err
	}
	req, err := c.newRequest(ctx, codes.POST, href, nil)
	if err != nil {
		return Response{}, err
	}
	req.SetContentFormat(ocf.ContentFormatOCFCBOR)
	buf := make([]byte, 2)
	n, _ := message.EncodeUint32(buf, ocf.Version100)
	req.AddOptionBytes(ocf.OptionContentVersion, buf[:n])
	req.SetBody(bytes.NewReader(payload))
	return c.do(req)
}

// PostRaw sends body as it is, with content format cf (-1: none) and
// optional queries. It is for tools and tests that need to send what Post
// would not (another content format, a hand-made payload).
func (c *Conn) PostRaw(ctx context.Context, href string, cf int, body []byte, query ...string) (Response, error) {
	return c.Do(ctx, codes.POST, href, cf, body, query...)
}

// Do sends any request with a raw body (nil: none) and content format cf
// (-1: none).
func (c *Conn) Do(ctx context.Context, method codes.Code, href string, cf int, body []byte, query ...string) (Response, error) {
	req, err := c.newRequest(ctx, method, href, query)
	if err != nil {
		return Response{}, err
	}
	if cf >= 0 {
		req.SetContentFormat(message.MediaType(cf))
	}
	if body != nil {
		req.SetBody(bytes.NewReader(body))
	}
	return c.do(req)
}

// Observation is a running Observe registration.
type Observation interface {
	Cancel(ctx context.Context) error
}

// Observe registers for href and calls fn with the first representation and
// every notification, in order, until Cancel or the connection closes. An
// error notification is passed as a Response with its DeviceError.
func (c *Conn) Observe(ctx context.Context, href string, fn func(Response, error)) (Observation, error) {
	req, err := c.newRequest(ctx, codes.GET, href, nil)
	if err != nil {
		return nil, err
	}
	defer c.cc.ReleaseMessage(req)
	req.SetObserve(0)
	obs, err := c.cc.DoObserve(req, func(m *pool.Message) {
		fn(toResponse(m))
	})
	if err != nil {
		return nil, fmt.Errorf("observe %s%s: %w", c.endpoint, href, err)
	}
	return observation{obs}, nil
}

type observation struct {
	o interface {
		Cancel(ctx context.Context, opts ...message.Option) error
	}
}

func (o observation) Cancel(ctx context.Context) error { return o.o.Cancel(ctx) }

// ErrConnectionLost is wrapped by requests on a connection that ended: the
// device's port refused the datagram (nothing listens there, or the device
// is restarting). Device dials again on its next call.
var ErrConnectionLost = errors.New("connection lost: nothing answers at this address (down, or restarting)")

// ErrNotFound is returned by FindResource when no link has the type.
var ErrNotFound = errors.New("no such resource")
