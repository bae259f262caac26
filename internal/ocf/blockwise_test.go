package ocf

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// bigResource returns a ~3 KB representation: three blocks of 1024.
func bigResource() (*fakeResource, []byte) {
	f := newFake("/big")
	f.observable = true
	rep := map[string]any{"data": strings.Repeat("0123456789abcdef", 190)}
	f.serve = func(*Request) Response { return Response{Body: rep} }
	b, _ := Encode(rep)
	return f, b
}

func TestBlock2WholeBodyWithGoCoapClient(t *testing.T) {
	f, want := bigResource()
	_, addr := startServer(t, testConfig(t), f)
	cc := dial(t, addr, true)
	resp := do(t, cc, call{codes.GET, "/big", -1, nil, nil})
	if got := body(t, resp); resp.Code() != codes.Content || !bytes.Equal(got, want) {
		t.Fatalf("GET /big = %v, %d bytes, want %d bytes", resp.Code(), len(got), len(want))
	}
}

func TestBlock2Blocks(t *testing.T) {
	f, want := bigResource()
	if len(want) <= 2048 || len(want) > 3072 {
		t.Fatalf("test representation is %d bytes, want three 1024-byte blocks", len(want))
	}
	_, addr := startServer(t, testConfig(t), f)
	p := rawDial(t, addr)
	block := func(num, szx uint32) message.Option { return uintOpt(message.Block2, num<<4|szx) }

	tests := []struct {
		name     string
		opts     []message.Option
		wantCode codes.Code
		wantOpt  uint32 // Block2 value
		from, to int    // slice of want
		size2    bool
	}{
		{"unasked: first block", nil, codes.Content, 0<<4 | 1<<3 | 6, 0, 1024, true},
		{"block 1", []message.Option{block(1, 6)}, codes.Content, 1<<4 | 1<<3 | 6, 1024, 2048, false},
		{"last block", []message.Option{block(2, 6)}, codes.Content, 2<<4 | 6, 2048, len(want), false},
		{"smaller blocks", []message.Option{block(3, 2)}, codes.Content, 3<<4 | 1<<3 | 2, 192, 256, false},
		{"beyond the end", []message.Option{block(9, 6)}, codes.BadOption, 0, 0, 0, false},
		{"BERT is malformed", []message.Option{block(0, 7)}, codes.BadOption, 0, 0, 0, false},
	}
	var etag []byte
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.send(p.get(message.Confirmable, "/big", "b", tc.opts...))
			r := p.recv()
			if r.Code != tc.wantCode {
				t.Fatalf("code = %v, want %v", r.Code, tc.wantCode)
			}
			if tc.wantCode != codes.Content {
				var d Diagnostic
				if err := Decode(r.Payload, &d); err != nil || d.Error == "" {
					t.Fatalf("error without Diagnostic: %x", r.Payload)
				}
				return
			}
			v, err := r.Options.GetUint32(message.Block2)
			if err != nil || v != tc.wantOpt {
				t.Fatalf("Block2 = %#x (%v), want %#x", v, err, tc.wantOpt)
			}
			if !bytes.Equal(r.Payload, want[tc.from:tc.to]) {
				t.Fatalf("payload is not bytes %d..%d of the representation", tc.from, tc.to)
			}
			size2, err := r.Options.GetUint32(message.Size2)
			if tc.size2 && (err != nil || int(size2) != len(want)) {
				t.Errorf("Size2 = %d (%v), want %d", size2, err, len(want))
			}
			e, err := r.Options.GetBytes(message.ETag)
			if err != nil || len(e) == 0 {
				t.Fatalf("no ETag on a block")
			}
			if etag != nil && !bytes.Equal(e, etag) {
				t.Errorf("ETag changed between blocks of the same representation")
			}
			etag = e
		})
	}

	// A small representation goes out whole, without Block2.
	p.send(p.get(message.Confirmable, "/oic/p", "s"))
	if r := p.recv(); r.Options.HasOption(message.Block2) {
		t.Errorf("small reply carries Block2")
	}
}

// TestBlock2Notification: a large notification's first block carries
// Observe; go-coap's client fetches the rest and hands over the whole body.
func TestBlock2Notification(t *testing.T) {
	f, want := bigResource()
	s, addr := startServer(t, testConfig(t), f)
	cc := dial(t, addr, true)
	bodies := make(chan []byte, 8)
	obs, err := cc.Observe(context.Background(), "/big", func(m *pool.Message) {
		b, _ := m.ReadBody()
		bodies <- b
	})
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	defer func() { _ = obs.Cancel(context.Background()) }()
	if b := recvBody(t, bodies); !bytes.Equal(b, want) {
		t.Fatalf("registration reply: %d bytes, want %d", len(b), len(want))
	}
	s.Notify("/big")
	if b := recvBody(t, bodies); !bytes.Equal(b, want) {
		t.Fatalf("notification: %d bytes, want %d", len(b), len(want))
	}
}

func TestDecodeBlock(t *testing.T) {
	for _, tc := range []struct {
		v    uint32
		want blockOpt
		err  bool
	}{
		{0x06, blockOpt{szx: 6}, false},
		{0x1e, blockOpt{num: 1, more: true, szx: 6}, false},
		{0x07, blockOpt{}, true},
		{1 << 24, blockOpt{}, true},
	} {
		got, err := decodeBlock(tc.v)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("decodeBlock(%#x) = %+v, %v", tc.v, got, err)
		}
		if !tc.err && got.value() != tc.v {
			t.Errorf("value() = %#x, want %#x", got.value(), tc.v)
		}
	}
}

// recvBody waits for the next observed body; the bound only stops a broken
// test from hanging.
func recvBody(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("no notification")
		return nil
	}
}
