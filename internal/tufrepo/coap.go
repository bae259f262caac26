package tufrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/dtls"
	dtlsServer "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
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
// resume from any block.
func ServeCoAP(ctx context.Context, conn *net.UDPConn, dir string, opts ServeOptions) error {
	h, err := newCoAPHandler(dir, opts)
	if err != nil {
		_ = conn.Close()
		return err
	}
	ticker := newPeriodic()
	defer ticker.stop()
	s := udp.NewServer(
		options.WithHandlerFunc(h.serve),
		// go-coap's own blockwise buffers whole bodies in memory; blocks
		// are cut here from the file instead.
		options.WithBlockwise(false, blockwise.SZX1024, time.Minute),
		options.WithRequestMonitor(dropNonRequests),
		options.WithErrors(h.goCoAPError),
		options.WithPeriodicRunner(ticker.run),
	)
	l := coapNet.NewUDPConn("udp", conn)
	err = serveUntil(ctx, func() error { return s.Serve(l) }, s.Stop)
	// Stop may have run before Serve registered the listener; closing is
	// idempotent, so close it here too.
	_ = l.Close()
	if err != nil {
		return fmt.Errorf("serve coap %s: %w", conn.LocalAddr(), err)
	}
	return nil
}

// ServeCoAPs serves DIR/repository over CoAP over DTLS on ln (for example
// coapNet.NewDTLSListener("udp", addr, dtlsConfig)) until ctx is done, with
// the same behaviour as ServeCoAP. ln is closed on return.
func ServeCoAPs(ctx context.Context, ln dtlsServer.Listener, dir string, opts ServeOptions) error {
	h, err := newCoAPHandler(dir, opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ticker := newPeriodic()
	defer ticker.stop()
	s := dtls.NewServer(
		options.WithHandlerFunc(h.serve),
		options.WithBlockwise(false, blockwise.SZX1024, time.Minute),
		options.WithRequestMonitor(dropNonRequests),
		options.WithErrors(h.goCoAPError),
		options.WithPeriodicRunner(ticker.run),
	)
	err = serveUntil(ctx, func() error { return s.Serve(ln) }, s.Stop)
	_ = ln.Close() // as in ServeCoAP; coapNet.DTLSListener tolerates a second Close
	if err != nil {
		return fmt.Errorf("serve coaps: %w", err)
	}
	return nil
}

// serveUntil runs serve and calls stop when ctx is done; it returns once
// serve has returned and the watcher goroutine has exited. An error after
// ctx is done is the shutdown itself, not a failure.
func serveUntil(ctx context.Context, serve func() error, stop func()) error {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	err := serve()
	close(done)
	wg.Wait()
	stop() // idempotent; releases sessions when serve failed by itself
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// periodic runs go-coap's housekeeping (expirations, inactivity). go-coap's
// default runner sleeps between rounds and outlives the server by up to
// four seconds; this one stops at once.
type periodic struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// periodicInterval is how often expirations are checked.
const periodicInterval = time.Second

func newPeriodic() *periodic { return &periodic{done: make(chan struct{})} }

func (p *periodic) run(f func(now time.Time) bool) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(periodicInterval)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				if !f(now) {
					return
				}
			case <-p.done:
				return
			}
		}
	}()
}

// stop ends the runner's goroutines and waits for them.
func (p *periodic) stop() {
	p.once.Do(func() { close(p.done) })
	p.wg.Wait()
}

// dropNonRequests discards Reset, Acknowledgement and non-confirmable Empty
// messages before go-coap handles them. This server never sends Confirmable
// messages, so no Reset or ACK is ever expected; left to go-coap's default
// path, a peer's Reset reaches the handler and draws a Confirmable reply,
// which the peer resets again, endlessly. Confirmable Empty (CoAP ping) is
// kept: go-coap answers it with one Reset.
func dropNonRequests(_ *udpClient.Conn, m *pool.Message) (bool, error) {
	switch {
	case m.Type() == message.Reset, m.Type() == message.Acknowledgement:
		return true, nil
	case m.Type() == message.NonConfirmable && (m.Code() == codes.Empty || !isRequestCode(m.Code())):
		return true, nil
	}
	return false, nil
}

func isRequestCode(c codes.Code) bool { return c >= codes.GET && c < 32 }

type coapHandler struct {
	root   string
	opts   ServeOptions
	maxSZX blockwise.SZX
}

func newCoAPHandler(dir string, opts ServeOptions) (*coapHandler, error) {
	szx := blockwise.SZX1024
	if opts.BlockSize != 0 {
		var ok bool
		if szx, ok = szxOf(opts.BlockSize); !ok {
			return nil, fmt.Errorf("serve coap: block size %d: %w: want a power of two from 16 to 1024", opts.BlockSize, ErrInvalid)
		}
	}
	return &coapHandler{root: filepath.Join(dir, repositoryDir), opts: opts, maxSZX: szx}, nil
}

func szxOf(size int) (blockwise.SZX, bool) {
	for s := blockwise.SZX16; s <= blockwise.SZX1024; s++ {
		if s.Size() == int64(size) {
			return s, true
		}
	}
	return 0, false
}

func (h *coapHandler) goCoAPError(err error) {
	h.opts.errorf("coap: %w", err)
}

// coapReply is a response built independently of how it is sent.
type coapReply struct {
	code    codes.Code
	format  message.MediaType
	etag    []byte
	block2  uint32
	hasBlk  bool
	size2   uint32
	hasSize bool
	payload []byte
}

// serve answers a request. Confirmable requests get a piggybacked reply
// through w; go-coap would send the reply to a non-confirmable request as
// Confirmable, so that one is written here as Non-confirmable.
func (h *coapHandler) serve(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message) {
	if !isRequestCode(r.Code()) {
		return // stray response: w stays unmodified, go-coap ACKs it if needed
	}
	rep := h.reply(r)
	if r.Type() != message.NonConfirmable {
		rep.apply(w.Message())
		return
	}
	cc := w.Conn()
	m := cc.AcquireMessage(r.Context())
	defer cc.ReleaseMessage(m)
	m.SetToken(r.Token())
	m.SetType(message.NonConfirmable)
	m.SetMessageID(cc.GetMessageID())
	rep.apply(m)
	if err := cc.WriteMessage(m); err != nil {
		h.opts.errorf("coap: reply to %v: %w", cc.RemoteAddr(), err)
	}
}

func (rep *coapReply) apply(m *pool.Message) {
	m.SetCode(rep.code)
	if rep.etag != nil {
		m.SetOptionBytes(message.ETag, rep.etag)
	}
	if rep.hasBlk {
		m.SetOptionUint32(message.Block2, rep.block2)
	}
	if rep.hasSize {
		m.SetOptionUint32(message.Size2, rep.size2)
	}
	if rep.payload != nil {
		m.SetContentFormat(rep.format)
		m.SetBody(bytes.NewReader(rep.payload))
	}
}

func errReply(code codes.Code, msg string) coapReply {
	return coapReply{code: code, format: message.TextPlain, payload: []byte(msg)}
}

// reply builds the response to a request: one block of the file, read with
// ReadAt, so memory use is one block whatever the file size.
func (h *coapHandler) reply(r *pool.Message) coapReply {
	if r.Code() != codes.GET {
		return errReply(codes.MethodNotAllowed, "only GET")
	}
	p, err := r.Options().Path()
	if err != nil {
		return errReply(codes.NotFound, "not found")
	}
	f, fi, err := openServed(h.root, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errReply(codes.NotFound, "not found")
		}
		h.opts.errorf("coap: %w", err)
		return errReply(codes.InternalServerError, "internal error")
	}
	defer f.Close()
	size := fi.Size()
	if size > int64(^uint32(0)) {
		// Size2 and the Block2 number space cannot describe it.
		return errReply(codes.RequestEntityTooLarge, "file too large for CoAP")
	}

	szx, num, asked := h.maxSZX, int64(0), false
	if v, err := r.GetOptionUint32(message.Block2); err == nil {
		rszx, rnum, _, derr := blockwise.DecodeBlockOption(v)
		if derr != nil {
			return errReply(codes.BadOption, "bad Block2 option")
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
	}
	bs := szx.Size()
	off := num * bs
	if off > size || (off == size && size > 0) {
		return errReply(codes.BadOption, "Block2 beyond the end")
	}
	n := min(bs, size-off)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		h.opts.errorf("coap: read %s: %w", p, err)
		return errReply(codes.InternalServerError, "internal error")
	}
	rep := coapReply{
		code:    codes.Content,
		format:  coapFormat(fi.Name()),
		etag:    fileETag(fi),
		size2:   uint32(size),
		hasSize: true,
		payload: buf,
	}
	more := off+n < size
	if asked || more {
		v, err := blockwise.EncodeBlockOption(szx, num, more)
		if err != nil {
			return errReply(codes.BadOption, "bad Block2 option")
		}
		rep.block2, rep.hasBlk = v, true
	}
	return rep
}

func coapFormat(name string) message.MediaType {
	if strings.HasSuffix(name, ".json") {
		return message.AppJSON
	}
	return message.AppOctets
}
