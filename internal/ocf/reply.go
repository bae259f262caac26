package ocf

import (
	"bytes"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// send puts rep on the wire as the answer to r, and calls written once it
// is (or immediately, if go-coap offers no hook; the order then only risks a
// notification racing its registration reply).
//
// A CON request gets a piggybacked response in go-coap's ACK, which go-coap
// also caches for duplicate requests. A NON request gets a NON response:
// go-coap would send it as CON, which makes a discovery client owe us ACKs
// it never sends, so the response is written here.
func (s *Server) send(w *responsewriter.ResponseWriter[*udpClient.Conn], r *pool.Message, req *request, rep reply, written func()) error {
	if r.Type() == message.Confirmable {
		fill(w.Message(), req.token, req.format, rep)
		if !responsewriter.AfterWrite(r.Context(), written) {
			written()
		}
		return nil
	}
	cc := w.Conn()
	msg := cc.AcquireMessage(r.Context())
	defer cc.ReleaseMessage(msg)
	fill(msg, req.token, req.format, rep)
	msg.SetType(message.NonConfirmable)
	msg.SetMessageID(cc.GetMessageID())
	if err := cc.WriteMessage(msg); err != nil {
		return fmt.Errorf("write NON response: %w", err)
	}
	written()
	return nil
}

// fill writes rep into msg: code, token, Observe, content format (with the
// OCF version option when the peer speaks it), Block2 and payload.
func fill(msg *pool.Message, token []byte, f wireFormat, rep reply) {
	msg.SetCode(rep.code)
	msg.SetToken(token)
	msg.ResetOptionsTo(nil)
	if rep.hasObserve {
		msg.SetObserve(rep.observeSeq)
	}
	if rep.block1 != nil {
		msg.SetOptionUint32(message.Block1, rep.block1.value())
	}
	if rep.payload == nil {
		return
	}
	f.label(msg)
	rep.block.apply(msg)
	msg.SetBody(bytes.NewReader(rep.payload))
}
