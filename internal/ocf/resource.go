package ocf

import (
	"context"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Peer describes who sent a request. A CoAPs listener fills Secure, Auth and
// Identity from the DTLS session once its handshake succeeded; over plain
// CoAP Secure is false and Auth and Identity are empty.
type Peer struct {
	Addr     string // remote address, host:port
	Secure   bool   // request arrived over CoAPs, from a peer that completed the handshake
	Auth     string // how the peer authenticated: AuthPSK or AuthCert; empty over plain CoAP
	Identity string // the PSK identity, or the certificate subject's common name
}

// How a secure Peer authenticated. An identity means nothing without its
// kind: a certificate whose CN is "operator" is not the PSK identity
// "operator".
const (
	AuthPSK  = "psk"  // pre-shared key; Identity is the PSK identity the client sent
	AuthCert = "cert" // X.509 certificate verified against the trust anchors; Identity is its subject CN
)

// Request is a CoAP request as a Resource sees it, after the server checked
// content format, body size and interface.
type Request struct {
	Method    codes.Code // codes.GET, codes.POST, codes.PUT or codes.DELETE
	Interface string     // the if= query value, or the resource's default interface
	Query     []string   // all URI-Query options, raw ("rt=x", "if=y")
	Body      []byte     // CBOR payload (content format 10000 or 60), may be empty
	Peer      Peer
	Observe   bool // this GET registers an observer (Observe=0 on an Observable resource); informational

	// Multicast is true when the request arrived on a multicast group (OCF
	// discovery). The server never sends an error reply to a multicast
	// request, and sends nothing at all for a Response with NoReply set.
	Multicast bool
}

// Response is what a Resource answers. Body, when not nil, is encoded as CBOR
// by the server (with the content format the request asked for).
//
// A zero Code means success: 2.05 Content for GET, 2.04 Changed for POST and
// PUT, 2.02 Deleted for DELETE. An error Code (4.xx, 5.xx) with a nil Body is
// sent with a Diagnostic naming the code.
type Response struct {
	Code codes.Code
	Body any

	// NoReply asks the server to send nothing, and is honoured only for
	// multicast requests (a discovery whose filter matches nothing must stay
	// silent); a unicast request always gets an answer.
	NoReply bool
}

// Resource is one OCF resource served by Server. Serve is called for every
// request, and again (as a GET with the observer's interface and query) for
// each observer whenever Server.Notify(href) is called.
type Resource interface {
	Href() string
	Types() []string      // rt values
	Interfaces() []string // if values; the first is the default interface
	Observable() bool
	Serve(ctx context.Context, req *Request) Response
}

// Discoverable is optionally implemented by a Resource to keep itself out of
// /oic/res (Discoverable() false). A Resource without the method is listed.
type Discoverable interface {
	Discoverable() bool
}

// Diagnostic is the payload sent with every error reply:
// {"error": "why", "property": "which"} (property omitted when not about one).
type Diagnostic struct {
	Error    string `cbor:"error"`
	Property string `cbor:"property,omitempty"`
}

// ErrorResponse builds an error Response with a Diagnostic body.
func ErrorResponse(code codes.Code, property, msg string) Response {
	return Response{Code: code, Body: Diagnostic{Error: msg, Property: property}}
}
