package ocf

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// Block-wise responses (RFC 7959 Block2) are done here, not by go-coap: each
// block request runs the resource again and slices the fresh, deterministic
// encoding. That keeps no per-transfer state on the server, works whatever
// token the client uses for the next block, works the same for NON requests
// and for notifications (whose first block goes out with the Observe option,
// the rest is fetched with plain GETs), and an ETag over the whole
// representation lets the client notice when it changed between blocks.
//
// Block-wise request bodies (Block1) are reassembled in block1.go.

const (
	szxMax   = 6 // 1024 bytes; 7 is BERT, for TCP only
	maxBlock = 1<<20 - 1
)

// blockOpt is a decoded Block1 or Block2 option value (RFC 7959 §2.2).
type blockOpt struct {
	num  uint32
	more bool
	szx  uint8
}

func (b blockOpt) size() int { return 1 << (b.szx + 4) }

func (b blockOpt) value() uint32 {
	v := b.num<<4 | uint32(b.szx)
	if b.more {
		v |= 1 << 3
	}
	return v
}

var errBadBlock = errors.New("malformed block option")

func decodeBlock(v uint32) (blockOpt, error) {
	b := blockOpt{num: v >> 4, more: v&(1<<3) != 0, szx: uint8(v & 7)}
	if b.szx > szxMax || b.num > maxBlock {
		return blockOpt{}, errBadBlock
	}
	return b, nil
}

// readBlockOption decodes option id of r; ok is false when r has none.
func readBlockOption(r *pool.Message, id message.OptionID) (b blockOpt, ok bool, err error) {
	if !r.HasOption(id) {
		return blockOpt{}, false, nil
	}
	v, err := r.GetOptionUint32(id)
	if err != nil {
		return blockOpt{}, true, errBadBlock
	}
	b, err = decodeBlock(v)
	return b, true, err
}

// block2 is the slice of a representation that one reply carries.
type block2 struct {
	opt   blockOpt
	total int
	etag  []byte
}

// sliceBlock2 cuts the block a request asked for (req, when asked) out of
// payload, with blocks of at most maxSZX. It returns the part to send and the
// Block2 description, nil when the payload goes out whole. A block beyond the
// end is 4.02 Bad Option.
func sliceBlock2(payload []byte, req blockOpt, asked bool, maxSZX uint8) ([]byte, *block2, error) {
	szx := min(maxSZX, req.szx)
	if !asked {
		szx = maxSZX
		if len(payload) <= 1<<(szx+4) {
			return payload, nil, nil
		}
	}
	size := 1 << (szx + 4)
	// A client asking for bigger blocks than we send names its offset in its
	// own block size (RFC 7959 §2.4); re-express it in ours.
	off := int(req.num) * req.size()
	if !asked {
		off = 0
	}
	if off > 0 && off >= len(payload) {
		return nil, nil, fmt.Errorf("block %d of size %d starts beyond the %d-byte representation", req.num, req.size(), len(payload))
	}
	end := min(off+size, len(payload))
	sum := sha256.Sum256(payload)
	return payload[off:end], &block2{
		opt:   blockOpt{num: uint32(off / size), more: end < len(payload), szx: szx},
		total: len(payload),
		etag:  sum[:8],
	}, nil
}

// apply sets the Block2, Size2 and ETag options of a reply.
func (b *block2) apply(msg *pool.Message) {
	if b == nil {
		return
	}
	msg.SetOptionUint32(message.Block2, b.opt.value())
	if b.opt.num == 0 {
		msg.SetOptionUint32(message.Size2, uint32(b.total))
	}
	// SetETag fails only for values over 8 bytes; ours are 8.
	_ = msg.SetETag(b.etag)
}
