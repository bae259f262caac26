package ocf

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// blockMsg builds a POST carrying one Block1 block.
func blockMsg(num uint32, more bool, szx uint8, payload []byte, opts ...message.Option) *pool.Message {
	m := pool.NewMessage(context.Background())
	m.SetCode(codes.POST)
	m.SetOptionUint32(message.Block1, blockOpt{num: num, more: more, szx: szx}.value())
	for _, o := range opts {
		m.AddOptionBytes(o.ID, o.Value)
	}
	m.SetBody(bytes.NewReader(payload))
	return m
}

func TestBlock1Store(t *testing.T) {
	full := bytes.Repeat([]byte("0123456789abcdef"), 3) // three 16-byte blocks (SZX 0)
	part := func(i int) []byte { return full[i*16 : i*16+16] }
	type step struct {
		num      uint32
		more     bool
		payload  []byte
		opts     []message.Option
		wantCode codes.Code
		wantBody []byte
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"in order", 100, []step{
			{0, true, part(0), nil, codes.Continue, nil},
			{1, true, part(1), nil, codes.Continue, nil},
			{2, false, part(2)[:5], nil, 0, full[:37]},
		}},
		{"single final block", 100, []step{{0, false, part(0), nil, 0, part(0)}}},
		{"gap", 100, []step{
			{0, true, part(0), nil, codes.Continue, nil},
			{2, false, part(2), nil, codes.RequestEntityIncomplete, nil},
		}},
		{"continuation without start", 100, []step{{1, false, part(1), nil, codes.RequestEntityIncomplete, nil}}},
		{"short non-final block", 100, []step{{0, true, part(0)[:3], nil, codes.BadRequest, nil}}},
		{"over the limit", 40, []step{
			{0, true, part(0), nil, codes.Continue, nil},
			{1, true, part(1), nil, codes.Continue, nil},
			{2, false, part(2), nil, codes.RequestEntityTooLarge, nil},
		}},
		{"Size1 over the limit", 40, []step{{0, true, part(0), []message.Option{uintOpt(message.Size1, 41)}, codes.RequestEntityTooLarge, nil}}},
		{"restart with block 0", 100, []step{
			{0, true, part(0), nil, codes.Continue, nil},
			{0, true, part(1), nil, codes.Continue, nil},
			{1, false, part(2), nil, 0, append(append([]byte(nil), part(1)...), part(2)...)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlock1Store()
			for i, st := range tc.steps {
				r := blockMsg(st.num, st.more, 0, st.payload, st.opts...)
				res := b.feed(keyOf(nil, "/x", r), r, st.payload, tc.limit)
				if res.code != st.wantCode {
					t.Fatalf("step %d: code %v, want %v (%s)", i, res.code, st.wantCode, res.message)
				}
				if st.wantBody != nil && !bytes.Equal(res.body, st.wantBody) {
					t.Fatalf("step %d: body %q, want %q", i, res.body, st.wantBody)
				}
			}
			if n := b.len(); n != 0 {
				t.Errorf("%d transfers left over", n)
			}
		})
	}
}

func TestBlock1Limits(t *testing.T) {
	b := newBlock1Store()
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	for i := range maxTransfers {
		tag := message.Option{ID: message.RequestTag, Value: []byte{byte(i)}}
		if res := feedMsg(b, blockMsg(0, true, 0, make([]byte, 16), tag), make([]byte, 16), 100); res.code != codes.Continue {
			t.Fatalf("transfer %d: %v", i, res.code)
		}
	}
	extra := message.Option{ID: message.RequestTag, Value: []byte("extra")}
	if res := feedMsg(b, blockMsg(0, true, 0, make([]byte, 16), extra), make([]byte, 16), 100); res.code != codes.ServiceUnavailable {
		t.Fatalf("transfer over the limit: %v", res.code)
	}
	now = now.Add(transferIdle + time.Second)
	if res := feedMsg(b, blockMsg(0, true, 0, make([]byte, 16), extra), make([]byte, 16), 100); res.code != codes.Continue {
		t.Fatalf("after idle expiry: %v", res.code)
	}
	if n := b.len(); n != 1 {
		t.Errorf("transfers = %d, want only the new one", n)
	}
}

func feedMsg(b *block1Store, r *pool.Message, body []byte, limit int) block1Result {
	return b.feed(keyOf(nil, "/x", r), r, body, limit)
}

// TestBlock1EndToEnd: go-coap's client splits a large POST into blocks.
func TestBlock1EndToEnd(t *testing.T) {
	f := echoResource()
	_, addr := startServer(t, testConfig(t), f)
	cc := dial(t, addr, true)
	want := map[string]any{"purl": "https://example.com/" + strings.Repeat("x", 3000)}
	resp := do(t, cc, call{codes.POST, "/echo", ContentFormatCBOR, mustEncode(t, want), nil})
	if resp.Code() != codes.Changed {
		t.Fatalf("code = %v", resp.Code())
	}
	got, err := DecodeMap(body(t, resp))
	if err != nil || got["purl"] != want["purl"] {
		t.Fatalf("echo = %d keys, %v", len(got), err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("resource served %d times, want once with the whole body", n)
	}
}

func TestLibcoapBlock1(t *testing.T) {
	bin := coapClient(t)
	f := echoResource()
	_, addr := startServer(t, testConfig(t), f)
	want := map[string]any{"purl": "https://example.com/" + strings.Repeat("y", 400)}
	file := filepath.Join(t.TempDir(), "body.cbor")
	if err := os.WriteFile(file, mustEncode(t, want), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMap(runCoapClient(t, bin, "-m", "post", "-b", "64", "-f", file, "-t", "60", "coap://"+addr+"/echo"))
	if err != nil || m["purl"] != want["purl"] {
		t.Fatalf("POST echo = %v, %v", m, err)
	}
}
