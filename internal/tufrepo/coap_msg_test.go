package tufrepo

import (
	"bytes"
	"cmp"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// opt is one request option for encodeReq.
type opt struct {
	id  message.OptionID
	val []byte
}

func uintOpt(id message.OptionID, v uint32) opt {
	b := make([]byte, 4)
	n, _ := message.EncodeUint32(b, v)
	return opt{id, b[:n]}
}

// pathOpts is one Uri-Path option per segment of p.
func pathOpts(p string) []opt {
	var o []opt
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		o = append(o, opt{message.URIPath, []byte(seg)})
	}
	return o
}

// encodeReq encodes a message with the given options, sorted by number as
// the wire format requires.
func encodeReq(t testing.TB, typ message.Type, code codes.Code, mid int32, token []byte, opts ...opt) []byte {
	t.Helper()
	opts = slices.Clone(opts)
	slices.SortStableFunc(opts, func(a, b opt) int { return cmp.Compare(a.id, b.id) })
	m := message.Message{Type: typ, Code: code, MessageID: mid, Token: token}
	for _, o := range opts {
		m.Options = append(m.Options, message.Option{ID: o.id, Value: o.val})
	}
	buf := make([]byte, 2048)
	n, err := coder.DefaultCoder.Encode(m, buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func decodeResp(t testing.TB, b []byte) message.Message {
	t.Helper()
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(b, &m); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	return m
}

// TestCoAPRespond drives the stateless handler datagram by datagram: what
// is answered, with which type, code, Message ID and token, and what is
// ignored.
func TestCoAPRespond(t *testing.T) {
	f := newFixture(t, InitOptions{})
	ts := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json"))
	tsPath := pathOpts("/metadata/timestamp.json")
	pkgPath, pkgData := packagePath(t, f)
	tok := []byte{0xde, 0xad, 0xbe, 0xef}
	get := func(typ message.Type, extra ...opt) []byte {
		return encodeReq(t, typ, codes.GET, 0x1234, tok, append(slices.Clone(tsPath), extra...)...)
	}

	// What a test expects back; none: no datagram at all.
	type want struct {
		none    bool
		typ     message.Type
		code    codes.Code
		payload []byte // checked when not nil
	}
	ack := func(c codes.Code) want { return want{typ: message.Acknowledgement, code: c} }
	rst := want{typ: message.Reset, code: codes.Empty}
	none := want{none: true}
	tests := []struct {
		name string
		in   []byte
		want want
	}{
		{"CON GET", get(message.Confirmable), want{typ: message.Acknowledgement, code: codes.Content, payload: ts}},
		{"NON GET", get(message.NonConfirmable), want{typ: message.NonConfirmable, code: codes.Content, payload: ts}},
		{"CON GET of a block", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok,
			append(pathOpts(pkgPath), uintOpt(message.Block2, 2<<4|2))...), // num 2, 64 bytes
			want{typ: message.Acknowledgement, code: codes.Content, payload: pkgData[128:192]}},
		{"ping", encodeReq(t, message.Confirmable, codes.Empty, 0x1234, nil), rst},
		{"NON empty", encodeReq(t, message.NonConfirmable, codes.Empty, 0x1234, nil), none},
		{"ACK", encodeReq(t, message.Acknowledgement, codes.Empty, 0x1234, nil), none},
		{"Reset", encodeReq(t, message.Reset, codes.Empty, 0x1234, nil), none},
		{"ACK carrying GET", get(message.Acknowledgement), none},
		{"Reset carrying GET", get(message.Reset), none},
		{"CON response", encodeReq(t, message.Confirmable, codes.Content, 0x1234, tok), rst},
		{"NON response", encodeReq(t, message.NonConfirmable, codes.Content, 0x1234, tok), none},
		{"CON reserved class 1", encodeReq(t, message.Confirmable, codes.Code(1<<5), 0x1234, tok), rst},
		{"CON reserved class 7", encodeReq(t, message.Confirmable, codes.Code(7<<5|1), 0x1234, tok), rst},

		{"POST", encodeReq(t, message.Confirmable, codes.POST, 0x1234, tok, tsPath...), ack(codes.MethodNotAllowed)},
		{"DELETE", encodeReq(t, message.Confirmable, codes.DELETE, 0x1234, tok, tsPath...), ack(codes.MethodNotAllowed)},
		{"FETCH", encodeReq(t, message.Confirmable, codes.FETCH, 0x1234, tok, tsPath...), ack(codes.MethodNotAllowed)},
		{"NON POST", encodeReq(t, message.NonConfirmable, codes.POST, 0x1234, tok, tsPath...),
			want{typ: message.NonConfirmable, code: codes.MethodNotAllowed}},

		{"If-Match (critical, not supported)", get(message.Confirmable, opt{message.IfMatch, []byte{1}}), ack(codes.BadOption)},
		{"If-None-Match", get(message.Confirmable, opt{message.IfNoneMatch, nil}), ack(codes.BadOption)},
		{"Block1", get(message.Confirmable, uintOpt(message.Block1, 0)), ack(codes.BadOption)},
		{"unknown critical option", get(message.Confirmable, opt{65001, []byte{1}}), ack(codes.BadOption)},
		{"unknown critical option on NON is rejected silently", get(message.NonConfirmable, opt{65001, []byte{1}}), none},
		{"two Block2 options", get(message.Confirmable, uintOpt(message.Block2, 0), uintOpt(message.Block2, 1<<4)), ack(codes.BadOption)},
		{"Block2 too long", get(message.Confirmable, opt{message.Block2, []byte{0, 0, 0, 6}}), ack(codes.BadOption)},
		{"Proxy-Uri", get(message.Confirmable, opt{message.ProxyURI, []byte("coap://x/y")}), ack(codes.ProxyingNotSupported)},
		{"Proxy-Scheme", get(message.Confirmable, opt{message.ProxyScheme, []byte("coap")}), ack(codes.ProxyingNotSupported)},
		{"unknown elective option ignored", get(message.Confirmable, opt{65000, []byte{1}}), want{typ: message.Acknowledgement, code: codes.Content, payload: ts}},
		{"Observe ignored", get(message.Confirmable, uintOpt(message.Observe, 0)), want{typ: message.Acknowledgement, code: codes.Content, payload: ts}},
		{"Size2 ignored", get(message.Confirmable, uintOpt(message.Size2, 0)), want{typ: message.Acknowledgement, code: codes.Content, payload: ts}},
		{"Uri-Host, Uri-Port, Uri-Query ignored", get(message.Confirmable,
			opt{message.URIHost, []byte("repo.example")}, uintOpt(message.URIPort, 5683), opt{message.URIQuery, []byte("a=b")}),
			want{typ: message.Acknowledgement, code: codes.Content, payload: ts}},
		{"Accept matching", get(message.Confirmable, uintOpt(message.Accept, uint32(message.AppJSON))), ack(codes.Content)},
		{"Accept not matching", get(message.Confirmable, uintOpt(message.Accept, uint32(message.AppCBOR))), ack(codes.NotAcceptable)},

		{"no path", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok), ack(codes.NotFound)},
		{"slash inside a segment", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok,
			opt{message.URIPath, []byte("metadata/timestamp.json")}), ack(codes.NotFound)},
		{"empty first segment", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok,
			append([]opt{{message.URIPath, nil}}, tsPath...)...), ack(codes.NotFound)},
		{"dot dot", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok, pathOpts("/metadata/../../keys")...), ack(codes.NotFound)},
		{"invalid UTF-8", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok,
			opt{message.URIPath, []byte("metadata")}, opt{message.URIPath, []byte{0xff, 0xfe}}), ack(codes.NotFound)},
		{"path too long", encodeReq(t, message.Confirmable, codes.GET, 0x1234, tok,
			pathOpts(strings.Repeat("/"+strings.Repeat("a", 220), 5))...), ack(codes.NotFound)},

		{"shorter than a header", []byte{0x40, 0x01, 0x12}, none},
		{"version 2", append([]byte{0x80}, get(message.Confirmable)[1:]...), none},
		{"token length 9, CON", []byte{0x49, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9}, rst},
		{"token length 9, NON", []byte{0x59, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 9}, none},
		{"truncated token", []byte{0x44, 0x01, 0x12, 0x34, 1}, rst},
		{"option delta 15", []byte{0x40, 0x01, 0x12, 0x34, 0xf1, 0}, rst},
		{"truncated option", []byte{0x40, 0x01, 0x12, 0x34, 0xb5, 'a'}, rst},
		{"payload marker without payload", []byte{0x40, 0x01, 0x12, 0x34, 0xff}, rst},
		{"too many options", get(message.Confirmable, slices.Repeat([]opt{{message.URIQuery, []byte("q")}}, coapMaxOptions)...), rst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newCoAPHandler(f.dir, ServeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			h.mid.Store(0x1234) // the next NON response takes 0x1235
			out := h.respond(tt.in, testPeer, newCoAPScratch(1024))
			if tt.want.none {
				if out != nil {
					t.Fatalf("answered % x, want no answer", out)
				}
				return
			}
			if out == nil {
				t.Fatal("no answer")
			}
			m := decodeResp(t, out)
			if m.Type != tt.want.typ || m.Code != tt.want.code {
				t.Fatalf("%v %v, want %v %v", m.Type, m.Code, tt.want.typ, tt.want.code)
			}
			switch m.Type {
			case message.Reset:
				if m.MessageID != 0x1234 || len(m.Token) != 0 || len(m.Options) != 0 || len(m.Payload) != 0 {
					t.Fatalf("Reset: mid %#x token %x %d options %d bytes", m.MessageID, m.Token, len(m.Options), len(m.Payload))
				}
				if len(out) > len(tt.in) {
					t.Fatalf("Reset of %d bytes to a %d-byte datagram", len(out), len(tt.in))
				}
				return
			case message.Acknowledgement:
				if m.MessageID != 0x1234 {
					t.Fatalf("ACK mid %#x, want the request's 0x1234", m.MessageID)
				}
			case message.NonConfirmable:
				if m.MessageID != 0x1235 {
					t.Fatalf("NON mid %#x, want a new one (0x1235)", m.MessageID)
				}
			}
			if !bytes.Equal(m.Token, tok) {
				t.Fatalf("token %x, want %x", m.Token, tok)
			}
			if tt.want.payload != nil && !bytes.Equal(m.Payload, tt.want.payload) {
				t.Fatalf("payload %q, want %q", m.Payload, tt.want.payload)
			}
			if m.Code == codes.Content {
				etag, err := m.Options.GetBytes(message.ETag)
				if err != nil || len(etag) != 8 {
					t.Fatalf("ETag %x, %v", etag, err)
				}
				if _, err := m.Options.GetUint32(message.Size2); err != nil {
					t.Fatalf("no Size2: %v", err)
				}
				if _, err := m.Options.GetUint32(message.Observe); err == nil {
					t.Fatal("response carries Observe")
				}
			} else if _, err := m.Options.ContentFormat(); err == nil {
				t.Fatal("diagnostic payload with a Content-Format (RFC 7252 §5.5.2)")
			}
		})
	}
}

// A file larger than 4 GiB cannot be described by Size2; it is refused
// rather than served with a wrapped size.
func TestCoAPRefusesHugeFile(t *testing.T) {
	dir := t.TempDir()
	writeServed(t, dir, "targets/huge.bin", nil)
	// Sparse: no disk space used.
	if err := os.Truncate(filepath.Join(dir, repositoryDir, "targets", "huge.bin"), 1<<32+1); err != nil {
		t.Fatal(err)
	}
	h, err := newCoAPHandler(dir, ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	out := h.respond(encodeReq(t, message.Confirmable, codes.GET, 1, nil, pathOpts("/targets/huge.bin")...), testPeer, newCoAPScratch(1024))
	if m := decodeResp(t, out); m.Code != codes.RequestEntityTooLarge {
		t.Fatalf("%v, want 4.13", m.Code)
	}
}

// writeServed writes data at rel under DIR/repository.
func writeServed(t testing.TB, dir, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, repositoryDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Block2 arithmetic at the edges: an empty file, the last byte, BERT.
func TestCoAPBlockEdges(t *testing.T) {
	f := newFixture(t, InitOptions{})
	writeServed(t, f.dir, "targets/empty.bin", nil)
	writeServed(t, f.dir, "targets/k.bin", bytes.Repeat([]byte{'x'}, 1024))
	tests := []struct {
		name     string
		path     string
		block2   *uint32
		wantCode codes.Code
		wantLen  int
		wantBlk  bool
		wantMore bool
	}{
		{"empty file, no Block2", "/targets/empty.bin", nil, codes.Content, 0, false, false},
		{"empty file, block 0", "/targets/empty.bin", ptr(uint32(6)), codes.Content, 0, true, false},
		{"empty file, block 1", "/targets/empty.bin", ptr(uint32(1<<4 | 6)), codes.BadOption, 0, false, false},
		{"exactly one block, no Block2", "/targets/k.bin", nil, codes.Content, 1024, false, false},
		{"exactly one block, block 1 is past the end", "/targets/k.bin", ptr(uint32(1<<4 | 6)), codes.BadOption, 0, false, false},
		{"BERT is 1024", "/targets/k.bin", ptr(uint32(7)), codes.Content, 1024, true, false},
		{"512-byte blocks: second is the last", "/targets/k.bin", ptr(uint32(1<<4 | 5)), codes.Content, 512, true, false},
		{"M bit in a request is ignored", "/targets/k.bin", ptr(uint32(1<<3 | 5)), codes.Content, 512, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newCoAPHandler(f.dir, ServeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			opts := pathOpts(tt.path)
			if tt.block2 != nil {
				opts = append(opts, uintOpt(message.Block2, *tt.block2))
			}
			m := decodeResp(t, h.respond(encodeReq(t, message.Confirmable, codes.GET, 1, nil, opts...), testPeer, newCoAPScratch(1024)))
			if m.Code != tt.wantCode {
				t.Fatalf("%v, want %v", m.Code, tt.wantCode)
			}
			if m.Code != codes.Content {
				return
			}
			v, err := m.Options.GetUint32(message.Block2)
			if (err == nil) != tt.wantBlk || len(m.Payload) != tt.wantLen {
				t.Fatalf("Block2 present %v, %d bytes; want %v, %d", err == nil, len(m.Payload), tt.wantBlk, tt.wantLen)
			}
			if err == nil {
				if _, _, more, _ := blockwise.DecodeBlockOption(v); more != tt.wantMore {
					t.Fatalf("more %v, want %v", more, tt.wantMore)
				}
			}
		})
	}
}

// NON responses take new Message IDs, one per response.
func TestCoAPNonMessageIDs(t *testing.T) {
	f := newFixture(t, InitOptions{})
	h, err := newCoAPHandler(f.dir, ServeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	s := newCoAPScratch(1024)
	in := encodeReq(t, message.NonConfirmable, codes.GET, 7, []byte{1}, pathOpts("/metadata/timestamp.json")...)
	seen := map[int32]bool{}
	for range 100 {
		m := decodeResp(t, h.respond(in, testPeer, s))
		if seen[m.MessageID] {
			t.Fatalf("Message ID %d reused", m.MessageID)
		}
		seen[m.MessageID] = true
	}
}

// FuzzCoAPRespond: any datagram is answered with at most one well-formed
// datagram, never Confirmable, never to an ACK or Reset, and a Reset or
// ACK answer carries the datagram's Message ID.
func FuzzCoAPRespond(f *testing.F) {
	dir := f.TempDir()
	writeServed(f, dir, "metadata/timestamp.json", []byte(`{"signed":{}}`))
	writeServed(f, dir, "targets/m/1/pkg.bin", bytes.Repeat([]byte{7}, 3000))
	tok := []byte{1, 2}
	for _, in := range [][]byte{
		encodeReq(f, message.Confirmable, codes.GET, 1, tok, pathOpts("/metadata/timestamp.json")...),
		encodeReq(f, message.NonConfirmable, codes.GET, 2, tok, append(pathOpts("/targets/m/1/pkg.bin"), uintOpt(message.Block2, 2<<4|6))...),
		encodeReq(f, message.Confirmable, codes.GET, 3, tok, append(pathOpts("/targets/m/1/pkg.bin"), uintOpt(message.Block2, 1<<4|7), uintOpt(message.Size2, 0))...),
		encodeReq(f, message.Confirmable, codes.Empty, 4, nil),
		encodeReq(f, message.Confirmable, codes.POST, 5, tok, opt{message.IfMatch, nil}),
		{0x40, 0x01, 0x12, 0x34, 0xf1, 0},
	} {
		f.Add(in)
	}
	h, err := newCoAPHandler(dir, ServeOptions{BlockSize: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(h.close)
	s := newCoAPScratch(256)
	f.Fuzz(func(t *testing.T, in []byte) {
		out := h.respond(in, testPeer, s)
		if out == nil {
			return
		}
		typ := message.Type((in[0] >> 4) & 3)
		mid := int32(in[2])<<8 | int32(in[3])
		m := decodeResp(t, out)
		switch {
		case typ == message.Acknowledgement || typ == message.Reset:
			t.Fatalf("answered a %v with a %v", typ, m.Type)
		case m.Type == message.Confirmable:
			t.Fatal("Confirmable answer")
		case (m.Type == message.Acknowledgement || m.Type == message.Reset) && m.MessageID != mid:
			t.Fatalf("%v with mid %d to mid %d", m.Type, m.MessageID, mid)
		case m.Type == message.Reset && len(out) > len(in):
			t.Fatalf("Reset of %d bytes to %d bytes", len(out), len(in))
		case len(m.Payload) > 256+len(diagNotAccepted):
			t.Fatalf("%d-byte payload from a 256-byte block server", len(m.Payload))
		}
	})
}

func ptr[T any](v T) *T { return &v }

// testPeer stands for the sender of a datagram handed to respond.
var testPeer = netip.MustParseAddrPort("127.0.0.1:5683")
