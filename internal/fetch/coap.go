package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// retransmitTick is how often go-coap checks for confirmable messages to
// retransmit. Its default runner wakes every 4 s, far coarser than the
// 2 s ACK timeout, and leaves a goroutine sleeping after Close.
const retransmitTick = 250 * time.Millisecond

// blockSZX returns the Block2 SZX for a block size of 16..1024 bytes.
func blockSZX(size int) (blockwise.SZX, bool) {
	for szx := blockwise.SZX16; szx <= blockwise.SZX1024; szx++ {
		if szx.Size() == int64(size) {
			return szx, true
		}
	}
	return 0, false
}

// coapConn is an open CoAP connection and how to close it completely.
type coapConn struct {
	*udpclient.Conn
	stop chan struct{} // stops the retransmission runner
}

func (c *coapConn) close(wait time.Duration) {
	_ = c.Conn.Close()
	t := time.NewTimer(wait)
	select { // let its read loop end so no goroutine outlives the attempt
	case <-c.Done():
	case <-t.C:
	}
	t.Stop()
	close(c.stop)
}

// dialCoAP opens a connection for u: plain UDP for coap, the configured
// DialCoAPS for coaps.
func (d *Downloader) dialCoAP(ctx context.Context, u *url.URL) (*coapConn, error) {
	addr := hostPort(u)
	if u.Scheme == SchemeCoAPS && d.cfg.DialCoAPS == nil {
		return nil, failure(swu.ResultUnsupportedProt, "coaps needs credentials (not configured)", ErrNoCredentials)
	}
	stop := make(chan struct{})
	opts := []udp.Option{
		options.WithContext(ctx),
		// Block-wise by hand: go-coap's would hold the whole body in memory.
		options.WithBlockwise(false, blockwise.SZX1024, d.cfg.Timeout),
		// go-coap prints to stdout unless given an error sink.
		options.WithErrors(func(err error) { d.cfg.Logger.Debug("coap", "addr", addr, "err", err) }),
		options.WithPeriodicRunner(periodic.New(stop, retransmitTick)),
	}
	var (
		conn *udpclient.Conn
		err  error
	)
	if u.Scheme == SchemeCoAPS {
		// The dial context bounds the handshake; the connection itself
		// lives as long as the attempt (options.WithContext above).
		dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		conn, err = d.cfg.DialCoAPS(dctx, addr, opts...)
		cancel()
	} else {
		conn, err = udp.Dial(addr, opts...)
	}
	if err != nil {
		close(stop)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, networkFailure(err, addr)
	}
	return &coapConn{Conn: conn, stop: stop}, nil
}

// coapAttempt fetches blocks from s.Offset() on until the server sends the
// last one. It returns nil when the representation is complete, a
// *step.Error, or an error once ctx is done.
func (d *Downloader) coapAttempt(ctx context.Context, u *url.URL, s sink, st *transferState) error {
	conn, err := d.dialCoAP(ctx, u)
	if err != nil {
		return err
	}
	defer conn.close(d.cfg.Timeout)

	target := redact(u)
	path := u.Path
	if path == "" {
		path = "/"
	}
	var queries []string
	if u.RawQuery != "" {
		queries = strings.Split(u.RawQuery, "&")
	}
	askSize := true
	for {
		done, err := d.coapBlock(ctx, conn, target, path, queries, askSize, s, st)
		if err != nil || done {
			return err
		}
		askSize = false
	}
}

// coapBlock requests the block holding byte s.Offset() and writes the part
// of its payload from that byte on. done reports the last block.
func (d *Downloader) coapBlock(ctx context.Context, conn *coapConn, target, path string, queries []string,
	askSize bool, s sink, st *transferState,
) (done bool, err error) {
	szx, _ := blockSZX(int(st.blockSize))
	num := s.Offset() / st.blockSize
	opt, err := blockwise.EncodeBlockOption(szx, num, false)
	if err != nil {
		return false, failure(swu.ResultUnsupportedProt, "The package is too large for CoAP block-wise transfer",
			fmt.Errorf("block %d of %d bytes: %w", num, st.blockSize, err))
	}

	bctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := conn.NewGetRequest(bctx, path)
	if err != nil {
		return false, failure(swu.ResultInvalidURL, "The package URL cannot be sent over CoAP", err)
	}
	defer conn.ReleaseMessage(req)
	for _, q := range queries {
		req.AddQuery(q)
	}
	req.SetOptionUint32(message.Block2, opt)
	if askSize {
		req.SetOptionUint32(message.Size2, 0) // RFC 7959 §4: please send Size2
	}
	resp, err := conn.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: no answer for block %d within %v: %w", ErrStalled, num, d.cfg.Timeout, err)
		}
		return false, networkFailure(err, conn.RemoteAddr().String())
	}
	defer conn.ReleaseMessage(resp)
	return d.coapWrite(resp, target, num, s, st)
}

// coapWrite checks one response and writes its new bytes to s.
func (d *Downloader) coapWrite(resp *pool.Message, target string, num int64, s sink, st *transferState) (done bool, err error) {
	if code := resp.Code(); code != codes.Content {
		return false, coapStatusFailure(code, target)
	}
	if etag, err := resp.ETag(); err == nil {
		switch {
		case st.etag == nil:
			st.etag = bytes.Clone(etag)
		case !bytes.Equal(etag, st.etag):
			// The resource changed between blocks: what we hold is from
			// another representation. Start over from block 0.
			st.restarts++
			if st.restarts > maxRestarts {
				return false, failure(swu.ResultValidation, "The package kept changing on the server during the download",
					fmt.Errorf("ETag changed %d times", st.restarts))
			}
			d.cfg.Logger.Info("ETag changed; restarting from block 0", "url", target, "block", num)
			st.etag = bytes.Clone(etag)
			return false, s.Reset()
		}
	}
	if size2, err := resp.GetOptionUint32(message.Size2); err == nil {
		if err := s.Announce(int64(size2)); err != nil {
			return false, err
		}
	}
	payload := resp.Body()
	var n int64
	if payload != nil {
		if n, err = resp.BodySize(); err != nil {
			return false, fmt.Errorf("coap payload: %w", err)
		}
	}

	block, err := resp.GetOptionUint32(message.Block2)
	if err != nil {
		// No Block2: the whole representation in one message.
		if s.Offset() > 0 {
			if err := s.Reset(); err != nil {
				return false, err
			}
		}
		return true, copyPayload(s, payload, 0)
	}
	szx, rnum, more, err := blockwise.DecodeBlockOption(block)
	if err != nil || szx == blockwise.SZXBERT {
		return false, blockFailure(target, fmt.Errorf("Block2 %#x: szx %d: %w", block, szx, err))
	}
	size := szx.Size()
	start := rnum * size
	off := s.Offset()
	switch {
	case more && n != size:
		return false, blockFailure(target, fmt.Errorf("block %d has %d bytes, not %d, and more follow", rnum, n, size))
	case start > off || (more && start+n <= off):
		return false, blockFailure(target, fmt.Errorf("asked for the block with byte %d, got block %d of %d bytes", off, rnum, size))
	}
	if size < st.blockSize {
		st.blockSize = size // the server's choice holds for the rest (RFC 7959 §2.4)
	}
	if start+n > off {
		if err := copyPayload(s, payload, off-start); err != nil {
			return false, err
		}
	}
	return !more, nil
}

// copyPayload writes payload from skip on to s.
func copyPayload(s sink, payload io.ReadSeeker, skip int64) error {
	if payload == nil {
		return nil
	}
	if _, err := payload.Seek(skip, io.SeekStart); err != nil {
		return fmt.Errorf("coap payload: %w", err)
	}
	// The payload is already in memory: a *bytes.Reader hands it to
	// Write in one call, and a sink error comes back unchanged.
	_, err := io.Copy(s, payload)
	return err
}

// blockFailure is a server that does not follow Block2.
func blockFailure(target string, err error) error {
	return failure(swu.ResultUnsupportedProt, "The package server does not follow CoAP block-wise transfer",
		fmt.Errorf("GET %s: %w", target, err))
}
