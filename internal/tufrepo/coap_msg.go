package tufrepo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// The CoAP server answers each datagram from the datagram alone: no
// exchange state, no response cache, no per-peer table. That is what makes
// a block-wise download of N blocks cost O(N), and it is allowed here:
//
//   - Duplicate detection (RFC 7252 §4.5) is a SHOULD that "MAY be relaxed
//     in case the Confirmable message transports a request that is
//     idempotent". GET is safe and idempotent, so a retransmitted request
//     is answered again from the file. Should the file have been replaced
//     between the copies, the second answer carries the new ETag, which
//     the client already has to handle between any two blocks.
//   - The server never sends Confirmable messages (requests are answered
//     piggybacked or Non-confirmable), so it has nothing to retransmit and
//     no Acknowledgement or Reset to wait for.

// coapMaxOptions bounds the options decoded from one request. A GET for a
// repository file needs a handful (Uri-Path segments, Block2, Size2);
// more is treated as a message the server cannot process.
const coapMaxOptions = 64

// coapHeaderRoom is the encode buffer beyond the payload: header, token,
// the four response options and the payload marker need under 64 bytes.
const coapHeaderRoom = 128

// coapScratch is one worker's buffers, reused for every datagram so that
// answering a request allocates almost nothing.
type coapScratch struct {
	req     message.Message
	payload []byte // one block
	out     []byte // encoded response
	opts    message.Options
	optVals [16]byte
}

func newCoAPScratch(maxBlock int) *coapScratch {
	return &coapScratch{
		req:     message.Message{Options: make(message.Options, 0, coapMaxOptions)},
		payload: make([]byte, maxBlock),
		out:     make([]byte, maxBlock+coapHeaderRoom),
		opts:    make(message.Options, 0, 4),
	}
}

// coapHandler answers requests for the files of one repository.
type coapHandler struct {
	maxSZX blockwise.SZX
	errs   *errorReporter
	files  *fileCache
	mid    atomic.Uint32 // Message IDs of Non-confirmable responses
}

func newCoAPHandler(dir string, opts ServeOptions) (*coapHandler, error) {
	szx := blockwise.SZX1024
	if opts.BlockSize != 0 {
		var ok bool
		if szx, ok = szxOf(opts.BlockSize); !ok {
			return nil, fmt.Errorf("serve coap: block size %d: %w: want a power of two from 16 to 1024", opts.BlockSize, ErrInvalid)
		}
	}
	h := &coapHandler{
		maxSZX: szx,
		errs:   newErrorReporter(opts),
		files:  newFileCache(filepath.Join(dir, repositoryDir), fileCacheTTL),
	}
	h.mid.Store(rand.Uint32())
	return h, nil
}

func szxOf(size int) (blockwise.SZX, bool) {
	for s := blockwise.SZX16; s <= blockwise.SZX1024; s++ {
		if s.Size() == int64(size) {
			return s, true
		}
	}
	return 0, false
}

// close releases the open files the handler keeps.
func (h *coapHandler) close() { h.files.close() }

// respond returns the datagram that answers in, received from peer, or nil
// when nothing is to be sent. The result aliases s and is valid until s is
// used again.
func (h *coapHandler) respond(in []byte, peer fmt.Stringer, s *coapScratch) []byte {
	// RFC 7252 §3: messages with an unknown version are silently ignored,
	// and a datagram shorter than the header is not a message.
	if len(in) < 4 || in[0]>>6 != 1 {
		return nil
	}
	typ := message.Type((in[0] >> 4) & 0x3)
	mid := int32(binary.BigEndian.Uint16(in[2:4]))
	if typ == message.Acknowledgement || typ == message.Reset {
		// This server sends no Confirmable messages, so no ACK or Reset
		// can be for it; answering one could start a ping-pong.
		return nil
	}
	req := &s.req
	req.Options = req.Options[:0]
	if _, err := coder.DefaultCoder.Decode(in, req); err != nil {
		h.errs.report(fmt.Errorf("coap: malformed datagram from %v: %w", peer, err))
		return h.reject(typ, mid, s)
	}
	if req.Code == codes.Empty || req.Code>>5 != 0 {
		// Empty CON is a CoAP ping, answered with Reset (RFC 7252 §4.3);
		// a response or a reserved code class cannot be processed.
		return h.reject(typ, mid, s)
	}
	rep, ok := h.reply(req, s)
	if !ok && typ == message.NonConfirmable {
		// RFC 7252 §5.4.1: unrecognized critical options reject a NON
		// request silently (a CON one gets the 4.02 of rep).
		return nil
	}
	return h.encode(typ, mid, req.Token, rep, s)
}

// reject answers a Confirmable message the server cannot process with a
// Reset (RFC 7252 §4.2); anything else is silently ignored. A Reset is no
// larger than the message that drew it.
func (h *coapHandler) reject(typ message.Type, mid int32, s *coapScratch) []byte {
	if typ != message.Confirmable {
		return nil
	}
	m := message.Message{Type: message.Reset, Code: codes.Empty, MessageID: mid}
	n, err := coder.DefaultCoder.Encode(m, s.out)
	if err != nil {
		h.errs.report(fmt.Errorf("coap: encode reset: %w", err))
		return nil
	}
	return s.out[:n]
}

// encode writes rep as the response to a request of type typ: a
// piggybacked ACK with the request's Message ID for CON, a NON with a new
// Message ID for NON (RFC 7252 §5.2.1, §5.2.3); same token either way.
func (h *coapHandler) encode(typ message.Type, mid int32, token []byte, rep coapReply, s *coapScratch) []byte {
	m := message.Message{Token: token, Code: rep.code, Type: message.Acknowledgement, MessageID: mid, Payload: rep.payload}
	if typ == message.NonConfirmable {
		m.Type = message.NonConfirmable
		m.MessageID = int32(uint16(h.mid.Add(1)))
	}
	m.Options = rep.options(s)
	n, err := coder.DefaultCoder.Encode(m, s.out)
	if errors.Is(err, message.ErrTooSmall) && n > 0 {
		s.out = make([]byte, n)
		n, err = coder.DefaultCoder.Encode(m, s.out)
	}
	if err != nil {
		h.errs.report(fmt.Errorf("coap: encode response: %w", err))
		return nil
	}
	return s.out[:n]
}

// coapReply is a response before encoding.
type coapReply struct {
	code    codes.Code
	format  message.MediaType
	etag    []byte
	block2  uint32
	hasBlk  bool
	size2   uint32
	hasSize bool
	payload []byte
	hasFmt  bool
}

// options builds rep's options in s, in option-number order as the
// encoder's delta coding needs.
func (rep *coapReply) options(s *coapScratch) message.Options {
	opts, vals := s.opts[:0], s.optVals[:]
	if rep.etag != nil {
		opts = append(opts, message.Option{ID: message.ETag, Value: rep.etag})
	}
	put := func(id message.OptionID, v uint32) {
		n, _ := message.EncodeUint32(vals, v) // vals holds 4 bytes per option
		opts = append(opts, message.Option{ID: id, Value: vals[:n]})
		vals = vals[n:]
	}
	if rep.hasFmt {
		put(message.ContentFormat, uint32(rep.format))
	}
	if rep.hasBlk {
		put(message.Block2, rep.block2)
	}
	if rep.hasSize {
		put(message.Size2, rep.size2)
	}
	s.opts = opts
	return opts
}

// Diagnostic payloads of error responses, allocated once.
var (
	diagNotFound    = []byte("not found")
	diagBadOption   = []byte("unsupported critical option")
	diagBadBlock2   = []byte("bad Block2 option")
	diagBeyondEnd   = []byte("Block2 beyond the end")
	diagMethod      = []byte("only GET")
	diagInternal    = []byte("internal error")
	diagTooLarge    = []byte("file too large for CoAP")
	diagNoProxy     = []byte("not a proxy")
	diagNotAccepted = []byte("Accept does not match the file's format")
)

// diagOf is an error response with a diagnostic payload, which carries no
// Content-Format (RFC 7252 §5.5.2).
func diagOf(code codes.Code, msg []byte) coapReply { return coapReply{code: code, payload: msg} }

// reply builds the response to request req: one block of the file, read
// with ReadAt into s.payload, so memory use is one block whatever the file
// size. ok is false when the request carries a critical option this server
// does not recognize (the reply is then 4.02).
func (h *coapHandler) reply(req *message.Message, s *coapScratch) (rep coapReply, ok bool) {
	if req.Code != codes.GET {
		return diagOf(codes.MethodNotAllowed, diagMethod), true
	}
	switch checkCriticalOptions(req.Options) {
	case optsProxy:
		return diagOf(codes.ProxyingNotSupported, diagNoProxy), true
	case optsUnrecognized:
		return diagOf(codes.BadOption, diagBadOption), false
	}
	name, found := uriPath(req.Options)
	if !found {
		return diagOf(codes.NotFound, diagNotFound), true
	}

	szx, num, asked := h.maxSZX, int64(0), false
	if v, err := req.Options.GetUint32(message.Block2); err == nil {
		rszx, rnum, _, derr := blockwise.DecodeBlockOption(v)
		if derr != nil {
			return diagOf(codes.BadOption, diagBadBlock2), true
		}
		if rszx > blockwise.SZX1024 { // BERT is for reliable transports only
			rszx = blockwise.SZX1024
		}
		szx, num, asked = rszx, rnum, true
		if szx > h.maxSZX {
			// RFC 7959 §2.4: answer with a smaller block that starts at
			// the same offset.
			num *= szx.Size() / h.maxSZX.Size()
			szx = h.maxSZX
		}
	} else if !errors.Is(err, message.ErrOptionNotFound) {
		return diagOf(codes.BadOption, diagBadBlock2), true
	}

	// The first block of a transfer always sees the file as it is now;
	// later blocks may come from a file opened a moment ago, which keeps
	// a transfer on one version of the file (see fileCache).
	f, err := h.files.open(name, num == 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return diagOf(codes.NotFound, diagNotFound), true
		}
		h.errs.report(fmt.Errorf("coap: %w", err))
		return diagOf(codes.InternalServerError, diagInternal), true
	}
	defer h.files.release(f)
	size := f.size
	if size > int64(^uint32(0)) {
		// Size2 and the Block2 number space cannot describe it.
		return diagOf(codes.RequestEntityTooLarge, diagTooLarge), true
	}
	if acc, err := req.Options.GetUint32(message.Accept); err == nil && message.MediaType(acc) != f.format {
		return diagOf(codes.NotAcceptable, diagNotAccepted), true
	}
	bs := szx.Size()
	off := num * bs
	if off > size || (off == size && size > 0) {
		return diagOf(codes.BadOption, diagBeyondEnd), true
	}
	n := min(bs, size-off)
	buf := s.payload[:n]
	if _, err := f.f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		h.errs.report(fmt.Errorf("coap: read %s: %w", name, err))
		return diagOf(codes.InternalServerError, diagInternal), true
	}
	rep = coapReply{
		code:    codes.Content,
		format:  f.format,
		hasFmt:  true,
		etag:    f.etag[:],
		size2:   uint32(size),
		hasSize: true,
		payload: buf,
	}
	more := off+n < size
	if asked || more {
		v, err := blockwise.EncodeBlockOption(szx, num, more)
		if err != nil { // num beyond the 20 bits of the option
			return diagOf(codes.BadOption, diagBadBlock2), true
		}
		rep.block2, rep.hasBlk = v, true
	}
	return rep, true
}

// criticalCheck is what checkCriticalOptions found.
type criticalCheck int

const (
	optsOK criticalCheck = iota
	optsProxy
	optsUnrecognized
)

// checkCriticalOptions applies RFC 7252 §5.4.1, §5.4.3 and §5.4.5: a
// critical (odd-numbered) option the server does not act on, one with a
// value of the wrong length, or a second occurrence of a non-repeatable
// one makes the request unprocessable.
// Proxy-Uri and Proxy-Scheme are recognized, and refused with 5.05
// (§5.7.2). Elective options (Size2, ETag, Observe, ...) are ignored.
func checkCriticalOptions(opts message.Options) criticalCheck {
	var prev message.OptionID // options arrive sorted by number
	for _, o := range opts {
		if o.ID%2 == 0 {
			continue // go-coap's decoder drops elective options of a bad length
		}
		if !message.VerifyOptLen(o.ID, len(o.Value)) {
			return optsUnrecognized // §5.4.3: a bad length makes it unrecognized
		}
		switch o.ID {
		case message.ProxyURI, message.ProxyScheme:
			return optsProxy
		case message.URIPath, message.URIQuery:
			// repeatable; queries are ignored, as by the HTTP handler
		case message.URIHost, message.URIPort, message.Accept, message.Block2:
			// One virtual host: Uri-Host and Uri-Port need no action.
			if prev == o.ID {
				return optsUnrecognized
			}
		default:
			return optsUnrecognized
		}
		prev = o.ID
	}
	return optsOK
}

// uriPath joins the Uri-Path options into a path relative to the
// repository and applies the HTTP handler's rules (servedName). A segment
// holding '/' or invalid UTF-8 names nothing served.
func uriPath(opts message.Options) (string, bool) {
	var b strings.Builder
	for _, o := range opts {
		if o.ID != message.URIPath {
			continue
		}
		if bytes.IndexByte(o.Value, '/') >= 0 || !utf8.Valid(o.Value) {
			return "", false
		}
		// "/" before every segment: an empty one then shows as "//",
		// which servedName refuses.
		b.WriteByte('/')
		b.Write(o.Value)
		if b.Len() > maxServedPath+1 {
			return "", false
		}
	}
	return servedName(b.String())
}
