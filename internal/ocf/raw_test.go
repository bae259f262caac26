package ocf

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// rawPeer speaks CoAP datagram by datagram, to see exactly what the server
// sends: message types, IDs, and silence.
type rawPeer struct {
	t    testing.TB
	conn *net.UDPConn
	mid  int32
}

func rawDial(t testing.TB, addr string) *rawPeer {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawPeer{t: t, conn: c, mid: 100}
}

func (p *rawPeer) nextMID() int32 {
	p.mid++
	return p.mid
}

func (p *rawPeer) send(m message.Message) {
	p.t.Helper()
	n, err := coder.DefaultCoder.Size(m)
	if err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(m, buf); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.Write(buf); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram; the deadline only bounds a broken test.
func (p *rawPeer) recv() message.Message {
	p.t.Helper()
	buf := make([]byte, 65536)
	_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := p.conn.Read(buf)
	if err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	m := message.Message{Options: make(message.Options, 0, 32)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		p.t.Fatalf("decode: %v", err)
	}
	return m
}

// retransmit sends m again until a reply comes, as a CoAP client does.
func (p *rawPeer) retransmit(m message.Message) (message.Message, bool) {
	p.t.Helper()
	buf := make([]byte, 65536)
	for range 20 {
		p.send(m)
		_ = p.conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := p.conn.Read(buf)
		if err != nil {
			continue
		}
		r := message.Message{Options: make(message.Options, 0, 32)}
		if _, err := coder.DefaultCoder.Decode(buf[:n], &r); err != nil {
			p.t.Fatalf("decode: %v", err)
		}
		return r, true
	}
	return message.Message{}, false
}

// get builds a GET of path (no query) with a fresh MID and the given token.
func (p *rawPeer) get(typ message.Type, path string, token string, opts ...message.Option) message.Message {
	m := message.Message{Type: typ, Code: codes.GET, MessageID: p.nextMID(), Token: []byte(token)}
	buf := make([]byte, 256)
	var err error
	m.Options, _, err = m.Options.SetPath(buf, path)
	if err != nil {
		p.t.Fatal(err)
	}
	m.Options = append(m.Options, opts...)
	// CoAP encodes options as deltas: they must be in ID order.
	slices.SortStableFunc(m.Options, func(a, b message.Option) int { return int(a.ID) - int(b.ID) })
	return m
}

func TestNONRequestGetsNONReply(t *testing.T) {
	_, addr := startServer(t, testConfig(t))
	p := rawDial(t, addr)
	req := p.get(message.NonConfirmable, "/oic/d", "non1")
	p.send(req)
	resp := p.recv()
	if resp.Type != message.NonConfirmable || resp.Code != codes.Content || string(resp.Token) != "non1" {
		t.Fatalf("reply to NON = %v %v token %q, want NON 2.05 non1", resp.Type, resp.Code, resp.Token)
	}
	if resp.MessageID == req.MessageID {
		t.Errorf("NON reply reuses the request's MID %d", req.MessageID)
	}

	con := p.get(message.Confirmable, "/oic/d", "con1")
	p.send(con)
	resp = p.recv()
	if resp.Type != message.Acknowledgement || resp.MessageID != con.MessageID || resp.Code != codes.Content {
		t.Fatalf("reply to CON = %v MID %d %v, want piggybacked ACK MID %d", resp.Type, resp.MessageID, resp.Code, con.MessageID)
	}
}

// TestNonRequestsAreNotAnswered sends what must stay unanswered (a Reset, an
// unsolicited ACK, an Empty NON), then a request: the first datagram back
// must be that request's reply.
func TestNonRequestsAreNotAnswered(t *testing.T) {
	_, addr := startServer(t, testConfig(t))
	p := rawDial(t, addr)
	p.send(message.Message{Type: message.Reset, Code: codes.Empty, MessageID: p.nextMID()})
	p.send(message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: p.nextMID()})
	p.send(message.Message{Type: message.NonConfirmable, Code: codes.Empty, MessageID: p.nextMID()})
	p.send(message.Message{Type: message.Reset, Code: codes.Content, MessageID: p.nextMID(), Token: []byte("r")})
	p.send(p.get(message.NonConfirmable, "/oic/p", "after"))
	resp := p.recv()
	if string(resp.Token) != "after" || resp.Code != codes.Content {
		t.Fatalf("first datagram = %v %v token %q, want the reply to the GET", resp.Type, resp.Code, resp.Token)
	}
}

func TestPingGetsReset(t *testing.T) {
	_, addr := startServer(t, testConfig(t))
	p := rawDial(t, addr)
	ping := message.Message{Type: message.Confirmable, Code: codes.Empty, MessageID: p.nextMID()}
	p.send(ping)
	resp := p.recv()
	if resp.Type != message.Reset || resp.MessageID != ping.MessageID {
		t.Fatalf("reply to ping = %v MID %d, want Reset MID %d", resp.Type, resp.MessageID, ping.MessageID)
	}
}

// TestDuplicateCONIsAnsweredFromCache: a retransmitted CON POST must not run
// the resource twice.
func TestDuplicateCONIsAnsweredFromCache(t *testing.T) {
	f := echoResource()
	_, addr := startServer(t, testConfig(t), f)
	p := rawDial(t, addr)
	b := mustEncode(t, map[string]any{"a": "b"})
	req := message.Message{Type: message.Confirmable, Code: codes.POST, MessageID: p.nextMID(), Token: []byte("dup"), Payload: b}
	buf := make([]byte, 64)
	req.Options, _, _ = req.Options.SetPath(buf, "/echo")
	req.Options, _, _ = req.Options.SetContentFormat(make([]byte, 4), ContentFormatCBOR)
	p.send(req)
	first := p.recv()
	// Retransmit as a client would: go-coap ignores a duplicate that
	// arrives while it still finishes the first exchange.
	second, ok := p.retransmit(req)
	if !ok {
		t.Fatal("no reply to the retransmission")
	}
	if first.Code != codes.Changed || second.Code != codes.Changed || second.MessageID != req.MessageID {
		t.Fatalf("replies = %v, %v (MID %d)", first.Code, second.Code, second.MessageID)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("resource served %d times, want 1", n)
	}
}
