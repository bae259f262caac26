package ocf

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// This file is where a CoAP message becomes a Resource.Serve call:
//
//	handleCoAP (go-coap handler, one per listener)
//	  └─ parse: method, href, body size, content format, Accept, if=, blocks
//	  └─ serveRequest: Authorizer, Observe (de)registration, Resource.Serve
//	  └─ send (reply.go): CON → piggybacked ACK, NON → NON; Block2 slice
//
// Everything before Resource.Serve that can fail is answered here with the
// code DESIGN.md's "Wire format" names and a Diagnostic payload.

// request is a parsed CoAP request together with what the server needs
// besides the Request a Resource sees.
type request struct {
	Request
	href        string
	token       []byte
	format      wireFormat
	block2      blockOpt
	block2Asked bool
	observe     uint32 // 0 register, 1 deregister; meaningful when hasObserve
	hasObserve  bool
	block1      *blockOpt   // Block1 of the request's last block, echoed in the reply
	key         transferKey // identifies the request's block-wise exchange
}

// reply is a response before it goes on the wire.
type reply struct {
	code       codes.Code
	payload    []byte // encoded CBOR; nil for no payload
	block      *block2
	block1     *blockOpt
	observeSeq uint32
	hasObserve bool
	noReply    bool
}

// isRequest tells requests from the rest. Resets and Empty messages are
// never answered here: answering a Reset with a response starts an exchange
// that never ends between two peers that do the same.
//
// An ACK carrying a request code is taken as a request: go-coap's client
// asks for the next block of a block-wise CON notification inside the ACK
// of that notification. It gets a NON reply (see send).
func isRequest(r *pool.Message) bool {
	if r.Code() < codes.GET || r.Code() >= 32 {
		return false
	}
	switch r.Type() {
	case message.Confirmable, message.NonConfirmable, message.Acknowledgement:
		return true
	}
	return false
}

// handleCoAP answers one request from cc, a go-coap connection of the
// listener l.
func (s *Server) handleCoAP(l *listener, w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	if !isRequest(r) {
		return
	}
	cc := w.Conn()
	req, rep := s.parse(r, l.peer(cc), cc)
	var ob *observer
	if rep.code == 0 {
		rep, ob = s.serveRequest(r.Context(), req, cc)
	}
	if rep.block1 == nil {
		rep.block1 = req.block1
	}
	s.cfg.Logger.Debug("coap request", "peer", req.Peer.Addr, "identity", req.Peer.Identity, "method", r.Code().String(),
		"href", req.href, "code", rep.code.String(), "multicast", req.Multicast)
	// RFC 7252 §8.1: errors to multicast requests stay unsaid, and so does
	// a discovery that matched nothing.
	if req.Multicast && (rep.noReply || rep.code >= codes.BadRequest) {
		s.obs.remove(ob)
		return
	}
	if err := s.send(w, r, req, rep, func() { s.activate(ob) }); err != nil {
		s.obs.remove(ob)
		s.cfg.Logger.Warn("cannot send reply", "peer", req.Peer.Addr, "href", req.href, "err", err)
	}
}

// parse checks a request in the order DESIGN.md gives. A reply with a
// non-zero code is the error to send; otherwise req is ready to serve.
func (s *Server) parse(r *pool.Message, peer Peer, cc *udpClient.Conn) (*request, reply) {
	req := &request{token: r.Token()}
	req.Peer = peer
	cm := r.ControlMessage()
	req.Multicast = cm != nil && cm.Dst != nil && cm.Dst.IsMulticast()
	fail := func(code codes.Code, property, msg string) (*request, reply) {
		return req, s.encode(req.Method, ErrorResponse(code, property, msg))
	}

	body, err := r.ReadBody()
	if err != nil {
		return fail(codes.BadRequest, "", "cannot read the request body")
	}
	var ferr codes.Code
	var fmsg string
	req.format, ferr, fmsg = negotiate(r, len(body) > 0)

	req.Method = r.Code()
	switch req.Method {
	case codes.GET, codes.POST, codes.PUT, codes.DELETE:
	default:
		return fail(codes.MethodNotAllowed, "", "method "+req.Method.String()+" is not supported")
	}

	path, err := r.Options().Path()
	if err != nil {
		return fail(codes.BadOption, "", "malformed Uri-Path")
	}
	req.href = "/" + strings.TrimPrefix(path, "/")
	res := s.resource(req.href)
	if res == nil {
		return fail(codes.NotFound, "", "no resource at "+req.href)
	}
	// A change is authorized before its body is looked at, so a peer that
	// may not change anything cannot make the server buffer Block1
	// transfers for it. serveRequest asks again for every request.
	if req.Method != codes.GET {
		if code := s.authorize(req.Peer, req.href, req.Method, false); code != codes.Empty {
			return req, s.denied(req.Method, code)
		}
	}

	if len(body) > s.cfg.MaxBodySize {
		return fail(codes.RequestEntityTooLarge, "", "request body exceeds the limit")
	}
	req.key = keyOf(cc, req.href, r)
	b1 := s.block1.feed(req.key, r, body, s.cfg.MaxBodySize)
	req.block1 = b1.opt
	switch {
	case b1.code == codes.Continue:
		return req, reply{code: codes.Continue, block1: b1.opt}
	case b1.code != 0:
		return fail(b1.code, "", b1.message)
	case len(b1.body) > 0 && len(body) == 0:
		_, ferr, fmsg = negotiate(r, true)
	}
	body = b1.body
	if ferr != 0 {
		return fail(ferr, "", fmsg)
	}
	req.Body = body

	req.block2, req.block2Asked, err = readBlockOption(r, message.Block2)
	if err != nil {
		return fail(codes.BadOption, "", "malformed Block2 option")
	}
	if r.HasOption(message.Observe) {
		if req.observe, err = r.Observe(); err != nil {
			return fail(codes.BadOption, "", "malformed Observe option")
		}
		req.hasObserve = true
	}

	if req.Query, err = r.Queries(); err != nil && !errors.Is(err, message.ErrOptionNotFound) {
		return fail(codes.BadOption, "", "malformed Uri-Query")
	}
	iface, code, msg := pickInterface(req.Query, res.Interfaces())
	if code != 0 {
		return fail(code, "if", msg)
	}
	req.Interface = iface
	return req, reply{}
}

// pickInterface returns the interface an if= query selects, or the default.
func pickInterface(query, ifaces []string) (string, codes.Code, string) {
	var chosen string
	for _, q := range query {
		v, ok := strings.CutPrefix(q, "if=")
		if !ok {
			continue
		}
		if chosen != "" {
			return "", codes.BadRequest, "more than one if= query"
		}
		chosen = v
	}
	switch {
	case len(ifaces) == 0:
		return "", codes.InternalServerError, "resource has no interfaces"
	case chosen == "":
		return ifaces[0], 0, ""
	case !slices.Contains(ifaces, chosen):
		return "", codes.Forbidden, "interface " + chosen + " is not supported by this resource"
	}
	return chosen, 0, ""
}

// serveRequest runs the Authorizer and the resource, and handles Observe. A
// registration is returned as an inactive observer: it gets notifications
// only once its registration reply is on the wire, so they cannot overtake
// it.
func (s *Server) serveRequest(ctx context.Context, req *request, cc *udpClient.Conn) (reply, *observer) {
	res := s.resource(req.href)
	register := req.Method == codes.GET && req.hasObserve && req.observe == 0 &&
		req.block2.num == 0 && !req.Multicast && res.Observable()
	req.Observe = register
	if code := s.authorize(req.Peer, req.href, req.Method, register); code != codes.Empty {
		return s.denied(req.Method, code), nil
	}
	if req.Method == codes.GET && req.hasObserve && req.observe == 1 {
		s.obs.remove(s.obs.get(observerKey{cc: cc, token: string(req.token)}))
	}
	if req.Method != codes.GET && req.block2.num > 0 {
		// A later block of a response to a change: never run it again.
		code, payload, ok := s.block1.response(req.key)
		if !ok || len(req.Body) > 0 {
			return s.encode(req.Method, ErrorResponse(codes.RequestEntityIncomplete, "", "no response to continue; repeat the request")), nil
		}
		return s.slice(reply{code: code, payload: payload}, req.block2, true), nil
	}

	if register {
		// Render the registration reply and register under notifyMu: a
		// change is then either in the reply or queued for the observer
		// by its Notify, never lost between the two.
		s.notifyMu.Lock()
		defer s.notifyMu.Unlock()
	}
	resp := res.Serve(ctx, &req.Request)
	full := s.encode(req.Method, resp)
	rep := s.slice(full, req.block2, req.block2Asked)
	if req.Method != codes.GET && rep.block != nil && rep.block.opt.more {
		s.block1.keepResponse(req.key, full.code, full.payload)
	}
	if !register || rep.code != codes.Content {
		return rep, nil
	}
	ob, seq, ok := s.obs.add(&observer{
		key:    observerKey{cc: cc, token: string(req.token)},
		href:   req.href,
		iface:  req.Interface,
		query:  req.Query,
		peer:   req.Peer,
		format: req.format,
		szx:    s.blockSZXFor(req),
	})
	if !ok {
		s.cfg.Logger.Info("observer limit reached; answering without registering", "href", req.href, "peer", req.Peer.Addr)
		return rep, nil
	}
	rep.observeSeq, rep.hasObserve = seq, true
	return rep, ob
}

// blockSZXFor returns the block size for notifications to a new observer:
// the one it asked for at registration, if smaller than ours.
func (s *Server) blockSZXFor(req *request) uint8 {
	if req.block2Asked {
		return min(req.block2.szx, s.szx)
	}
	return s.szx
}

// encode turns a Resource's Response into a reply: default codes, a
// Diagnostic for errors without a body, CBOR.
func (s *Server) encode(method codes.Code, resp Response) reply {
	code := resp.Code
	if code == 0 {
		code = defaultCode(method)
	}
	body := resp.Body
	if body == nil && code >= codes.BadRequest {
		body = Diagnostic{Error: code.String()}
	}
	rep := reply{code: code, noReply: resp.NoReply}
	if body == nil {
		return rep
	}
	b, err := Encode(body)
	if err != nil {
		s.cfg.Logger.Error("cannot encode response", "code", code.String(), "err", err)
		b, _ = Encode(Diagnostic{Error: "cannot encode the representation"})
		rep.code = codes.InternalServerError
	}
	rep.payload = b
	return rep
}

// slice cuts the requested Block2 out of rep.
func (s *Server) slice(rep reply, b blockOpt, asked bool) reply {
	if rep.payload == nil {
		return rep
	}
	part, blk, err := sliceBlock2(rep.payload, b, asked, s.szx)
	if err != nil {
		return s.encode(codes.GET, ErrorResponse(codes.BadOption, "", err.Error()))
	}
	rep.payload, rep.block = part, blk
	return rep
}

func defaultCode(method codes.Code) codes.Code {
	switch method {
	case codes.POST, codes.PUT:
		return codes.Changed
	case codes.DELETE:
		return codes.Deleted
	default:
		return codes.Content
	}
}

// authorize asks the Authorizer, if any; codes.Empty allows.
func (s *Server) authorize(peer Peer, href string, method codes.Code, observe bool) codes.Code {
	if s.cfg.Authorizer == nil {
		return codes.Empty
	}
	return s.cfg.Authorizer.Authorize(peer, href, method, observe)
}

// denied is the reply to a request the Authorizer refused with code.
func (s *Server) denied(method codes.Code, code codes.Code) reply {
	msg := "access denied"
	switch code {
	case codes.Unauthorized:
		msg = "authentication required: use CoAPs with credentials the device trusts"
	case codes.Forbidden:
		msg = "not permitted by the device's access control list"
	}
	return s.encode(method, ErrorResponse(code, "", msg))
}
