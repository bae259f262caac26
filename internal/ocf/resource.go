package ocf

import (
	"context"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Peer describes who sent a request. Issue 5 (security) fills Identity and
// Secure from the DTLS session; over plain CoAP Secure is false.
type Peer struct {
	Addr     string // remote address, host:port
	Secure   bool   // request arrived over CoAPs
	Identity string // PSK identity or certificate subject; empty when unauthenticated
}

// Request is a CoAP request as a Resource sees it, after the server checked
// content format, body size and interface.
type Request struct {
	Method    codes.Code // codes.GET, codes.POST, codes.PUT or codes.DELETE
	Interface string     // the if= query value, or the resource's default interface
	Query     []string   // all URI-Query options, raw ("rt=x", "if=y")
	Body      []byte     // CBOR payload (content format 10000 or 60), may be empty
	Peer      Peer
	Observe   bool // GET carries Observe=0 (registration); informational
}

// Response is what a Resource answers. Body, when not nil, is encoded as CBOR
// by the server (with the content format the request asked for).
type Response struct {
	Code codes.Code
	Body any
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
