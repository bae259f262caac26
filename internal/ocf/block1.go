package ocf

import (
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Block-wise request bodies and the responses to them.
//
// Block1 (RFC 7959, atomic): blocks are collected
// per peer, method, href and Request-Tag (RFC 9175; the token may change
// from block to block), answered 2.31 Continue, and the request is served
// once with the whole body when the last block arrives. Bounded: at most
// maxTransfers at a time, each up to Config.MaxBodySize, each forgotten
// transferIdle after its last block.
//
// A large response to POST, PUT or DELETE cannot be re-created for its later
// blocks the way a GET's can (that would repeat the change), so it is kept,
// bounded the same way, for the client's Block2 continuations (same method
// and href, Block2 num > 0, no body; RFC 7959 §2.6).

const (
	maxTransfers = 16
	transferIdle = 30 * time.Second
)

type transferKey struct {
	cc     *udpClient.Conn
	method codes.Code
	href   string
	tag    string
}

type transfer struct {
	body    []byte // request body so far, or the whole response payload
	code    codes.Code
	expires time.Time
}

// block1Store holds the unfinished Block1 transfers of a Server, and the
// large responses to them.
type block1Store struct {
	mu        sync.Mutex
	transfers map[transferKey]*transfer
	responses map[transferKey]*transfer
	now       func() time.Time
}

func newBlock1Store() *block1Store {
	return &block1Store{
		transfers: make(map[transferKey]*transfer),
		responses: make(map[transferKey]*transfer),
		now:       time.Now,
	}
}

func keyOf(cc *udpClient.Conn, href string, r *pool.Message) transferKey {
	tag, _ := r.GetOptionBytes(message.RequestTag)
	return transferKey{cc: cc, method: r.Code(), href: href, tag: string(tag)}
}

// keepResponse stores the payload of a large non-GET response for its
// Block2 continuations.
func (b *block1Store) keepResponse(k transferKey, code codes.Code, payload []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.expire(now)
	if _, ok := b.responses[k]; !ok && len(b.responses) >= maxTransfers {
		return // the client gets 4.08 for the later blocks and may retry
	}
	b.responses[k] = &transfer{body: payload, code: code, expires: now.Add(transferIdle)}
}

// response returns a kept response payload.
func (b *block1Store) response(k transferKey) (codes.Code, []byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(b.now())
	t, ok := b.responses[k]
	if !ok {
		return 0, nil, false
	}
	t.expires = b.now().Add(transferIdle)
	return t.code, t.body, true
}

// block1Result tells the handler what to do with a request after feed.
type block1Result struct {
	body    []byte    // the whole body, when complete
	opt     *blockOpt // Block1 to echo in the reply; nil without Block1
	code    codes.Code
	message string // for an error code
}

// feed takes the body of one request. Without a Block1 option it returns
// body unchanged. A non-final block gives code Continue; the final block
// gives the reassembled body; a broken sequence gives an error code.
func (b *block1Store) feed(key transferKey, r *pool.Message, body []byte, limit int) block1Result {
	blk, ok, err := readBlockOption(r, message.Block1)
	switch {
	case !ok:
		return block1Result{body: body}
	case err != nil:
		return block1Result{code: codes.BadOption, message: "malformed Block1 option"}
	case blk.more && len(body) != blk.size():
		return block1Result{code: codes.BadRequest, message: "a non-final Block1 block must fill its block size"}
	}
	if blk.num == 0 {
		if size1, err := r.GetOptionUint32(message.Size1); err == nil && int(size1) > limit {
			return block1Result{code: codes.RequestEntityTooLarge, message: "announced request body exceeds the limit"}
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.expire(now)
	t := b.transfers[key]
	off := int(blk.num) * blk.size()
	switch {
	case blk.num == 0 && !blk.more:
		delete(b.transfers, key)
		return block1Result{body: body, opt: &blk}
	case blk.num == 0:
		if t == nil && len(b.transfers) >= maxTransfers {
			return block1Result{code: codes.ServiceUnavailable, message: "too many block-wise transfers in progress"}
		}
		t = &transfer{body: make([]byte, 0, 2*len(body))}
		b.transfers[key] = t
	case t == nil || off != len(t.body):
		delete(b.transfers, key)
		return block1Result{code: codes.RequestEntityIncomplete, message: "Block1 block out of sequence; start again with block 0"}
	}
	if len(t.body)+len(body) > limit {
		delete(b.transfers, key)
		return block1Result{code: codes.RequestEntityTooLarge, message: "request body exceeds the limit"}
	}
	t.body = append(t.body, body...)
	t.expires = now.Add(transferIdle)
	if blk.more {
		return block1Result{code: codes.Continue, opt: &blk}
	}
	delete(b.transfers, key)
	return block1Result{body: t.body, opt: &blk}
}

// expire forgets abandoned transfers and responses; callers hold mu.
func (b *block1Store) expire(now time.Time) {
	for _, m := range []map[transferKey]*transfer{b.transfers, b.responses} {
		for k, t := range m {
			if now.After(t.expires) {
				delete(m, k)
			}
		}
	}
}

func (b *block1Store) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.transfers)
}
