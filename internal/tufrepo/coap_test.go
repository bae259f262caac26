package tufrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

// startCoAP serves dir over CoAP on a loopback port until the test ends.
func startCoAP(t testing.TB, dir string, opts ServeOptions) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeCoAP(ctx, conn, dir, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeCoAP: %v", err)
		}
	})
	return conn.LocalAddr().String()
}

// dialCoAP is a go-coap client with its own blockwise off: the tests drive
// Block2 by hand, as the device's fetcher does.
func dialCoAP(t testing.TB, addr string) *udpClient.Conn {
	t.Helper()
	ticker := coaprun.New(100 * time.Millisecond)
	cc, err := udp.Dial(addr, options.WithBlockwise(false, blockwise.SZX1024, time.Minute),
		options.WithErrors(func(error) {}), options.WithPeriodicRunner(ticker.Func))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); <-cc.Done(); ticker.Stop() })
	return cc
}

// block is one Block2 response.
type block struct {
	code    codes.Code
	etag    []byte
	size2   uint32
	hasBlk  bool
	szx     blockwise.SZX
	num     int64
	more    bool
	payload []byte
	typ     message.Type
}

// noBlock2 makes getBlock send no Block2 option.
const noBlock2 = blockwise.SZX(255)

// getBlock asks for block num of size szx.
func getBlock(t testing.TB, cc *udpClient.Conn, p string, szx blockwise.SZX, num int64, typ message.Type) block {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := cc.NewGetRequest(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.ReleaseMessage(req)
	req.SetType(typ)
	if szx != noBlock2 {
		v, err := blockwise.EncodeBlockOption(szx, num, false)
		if err != nil {
			t.Fatal(err)
		}
		req.SetOptionUint32(message.Block2, v)
	}
	resp, err := cc.Do(req)
	if err != nil {
		t.Fatalf("GET %s block %d: %v", p, num, err)
	}
	defer cc.ReleaseMessage(resp)
	b := block{code: resp.Code(), typ: resp.Type()}
	b.etag, _ = resp.ETag()
	b.etag = bytes.Clone(b.etag)
	if v, err := resp.GetOptionUint32(message.Size2); err == nil {
		b.size2 = v
	}
	if v, err := resp.GetOptionUint32(message.Block2); err == nil {
		b.hasBlk = true
		if b.szx, b.num, b.more, err = blockwise.DecodeBlockOption(v); err != nil {
			t.Fatal(err)
		}
	}
	if resp.Body() != nil {
		if b.payload, err = io.ReadAll(resp.Body()); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// fetchAll downloads p block by block and checks every block's options.
func fetchAll(t testing.TB, cc *udpClient.Conn, p string, szx blockwise.SZX, typ message.Type) ([]byte, []byte) {
	t.Helper()
	var out, etag []byte
	for num := int64(0); ; num++ {
		b := getBlock(t, cc, p, szx, num, typ)
		if b.code != codes.Content {
			t.Fatalf("block %d: %v", num, b.code)
		}
		if !b.hasBlk || b.num != num || b.szx != szx {
			t.Fatalf("block %d: Block2 %v num %d szx %d", num, b.hasBlk, b.num, b.szx)
		}
		if len(b.etag) == 0 || (etag != nil && !bytes.Equal(etag, b.etag)) {
			t.Fatalf("block %d: ETag %x, first was %x", num, b.etag, etag)
		}
		etag = b.etag
		if typ == message.NonConfirmable && b.typ != message.NonConfirmable {
			t.Fatalf("block %d: reply to NON request is %v", num, b.typ)
		}
		out = append(out, b.payload...)
		if int64(b.size2) < int64(len(out)) {
			t.Fatalf("block %d: Size2 %d below bytes received %d", num, b.size2, len(out))
		}
		if !b.more {
			if int(b.size2) != len(out) {
				t.Fatalf("Size2 %d, received %d", b.size2, len(out))
			}
			return out, etag
		}
		if len(b.payload) != int(szx.Size()) {
			t.Fatalf("block %d: %d bytes, want %d", num, len(b.payload), szx.Size())
		}
	}
}

func TestCoAPBlock2Fetch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	file, data := tufrepotest.PackageFile(t, "big.bin", 200*1024+123)
	tg, err := AddTarget(dir, file, "lamp-1", "3.0.0", AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := "/targets/lamp-1/3.0.0/" + tg.Hashes["sha256"] + ".big.bin"
	cc := dialCoAP(t, startCoAP(t, dir, ServeOptions{}))

	httpETag := func() string {
		fi, err := os.Stat(filepath.Join(dir, repositoryDir, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", fileETag(fi))
	}()
	tests := []struct {
		name string
		szx  blockwise.SZX
		typ  message.Type
	}{
		{"CON 1024", blockwise.SZX1024, message.Confirmable},
		{"NON 1024", blockwise.SZX1024, message.NonConfirmable},
		{"CON 512", blockwise.SZX512, message.Confirmable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, etag := fetchAll(t, cc, p, tt.szx, tt.typ)
			if !bytes.Equal(got, data) {
				t.Fatalf("fetched %d bytes that differ from the %d-byte package", len(got), len(data))
			}
			if fmt.Sprintf("%x", etag) != httpETag {
				t.Fatalf("CoAP ETag %x differs from the HTTP ETag %s", etag, httpETag)
			}
		})
	}

	// Resume in the middle: block 100 of 1024 bytes is bytes 102400..103423.
	b := getBlock(t, cc, p, blockwise.SZX1024, 100, message.Confirmable)
	if !bytes.Equal(b.payload, data[102400:103424]) || !b.more || b.size2 != uint32(len(data)) {
		t.Fatalf("block 100: %d bytes more=%v size2=%d", len(b.payload), b.more, b.size2)
	}
}

func TestCoAPBlockNegotiation(t *testing.T) {
	f := newFixture(t, InitOptions{})
	p, data := packagePath(t, f) // 5000 bytes
	cc := dialCoAP(t, startCoAP(t, f.dir, ServeOptions{BlockSize: 256}))

	tests := []struct {
		name      string
		szx       blockwise.SZX
		num       int64
		wantCode  codes.Code
		wantSZX   blockwise.SZX
		wantNum   int64
		wantBytes []byte
		wantMore  bool
	}{
		{"no Block2: first block at the server's size", noBlock2, 0, codes.Content, blockwise.SZX256, 0, data[:256], true},
		{"larger block asked: same offset in smaller blocks", blockwise.SZX1024, 1, codes.Content, blockwise.SZX256, 4, data[1024:1280], true},
		{"BERT asked on UDP", blockwise.SZXBERT, 0, codes.Content, blockwise.SZX256, 0, data[:256], true},
		{"smaller block honoured", blockwise.SZX16, 3, codes.Content, blockwise.SZX16, 3, data[48:64], true},
		{"last block", blockwise.SZX256, 19, codes.Content, blockwise.SZX256, 19, data[4864:], false},
		{"beyond the end", blockwise.SZX256, 20, codes.BadOption, 0, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := getBlock(t, cc, p, tt.szx, tt.num, message.Confirmable)
			if b.code != tt.wantCode {
				t.Fatalf("code %v, want %v", b.code, tt.wantCode)
			}
			if tt.wantCode != codes.Content {
				return
			}
			if !b.hasBlk || b.szx != tt.wantSZX || b.num != tt.wantNum || b.more != tt.wantMore {
				t.Fatalf("Block2 szx %d num %d more %v, want szx %d num %d more %v", b.szx, b.num, b.more, tt.wantSZX, tt.wantNum, tt.wantMore)
			}
			if !bytes.Equal(b.payload, tt.wantBytes) || b.size2 != uint32(len(data)) {
				t.Fatalf("%d bytes, Size2 %d", len(b.payload), b.size2)
			}
		})
	}
}

func TestCoAPSmallFileAndErrors(t *testing.T) {
	f := newFixture(t, InitOptions{})
	root, err := loadRoot(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := keyFileName(RoleRoot, root.Signed.Roles[RoleRoot].KeyIDs[0])
	if err := os.Symlink(filepath.Join(f.dir, keysDir), filepath.Join(f.dir, repositoryDir, "k")); err != nil {
		t.Fatal(err)
	}
	cc := dialCoAP(t, startCoAP(t, f.dir, ServeOptions{}))

	small := tufrepotest.ReadFile(t, filepath.Join(f.dir, metadataDir, "timestamp.json"))
	if len(small) > 1024 {
		t.Fatalf("timestamp.json is %d bytes; the test needs it below one block", len(small))
	}
	b := getBlock(t, cc, "/metadata/timestamp.json", noBlock2, 0, message.Confirmable)
	if b.code != codes.Content || b.hasBlk || !bytes.Equal(b.payload, small) || b.size2 != uint32(len(small)) || len(b.etag) != 8 {
		t.Fatalf("small file: %v block=%v %d bytes size2=%d etag=%x", b.code, b.hasBlk, len(b.payload), b.size2, b.etag)
	}

	for _, p := range []string{
		"/metadata/99.root.json",
		"/metadata",
		"/k/" + keyFile,
		"/../keys/" + keyFile,
		"/metadata/../../keys/" + keyFile,
		"/.lock",
	} {
		if b := getBlock(t, cc, p, noBlock2, 0, message.Confirmable); b.code != codes.NotFound {
			t.Errorf("GET %s: %v, want 4.04", p, b.code)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cc.Post(ctx, "/metadata/timestamp.json", message.TextPlain, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code() != codes.MethodNotAllowed {
		t.Fatalf("POST: %v, want 4.05", resp.Code())
	}
	cc.ReleaseMessage(resp)
}

func TestCoAPETagChangesWhenFileReplaced(t *testing.T) {
	f := newFixture(t, InitOptions{})
	cc := dialCoAP(t, startCoAP(t, f.dir, ServeOptions{}))
	before := getBlock(t, cc, "/metadata/timestamp.json", noBlock2, 0, message.Confirmable)
	if _, err := Publish(f.dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	after := getBlock(t, cc, "/metadata/timestamp.json", noBlock2, 0, message.Confirmable)
	if bytes.Equal(before.etag, after.etag) {
		t.Fatal("ETag unchanged after the file was replaced")
	}
}

// A peer's Reset must not start an exchange: the first datagram the server
// sends after a Reset and a GET from the same peer is the reply to the GET.
func TestCoAPResetDrawsNoReply(t *testing.T) {
	f := newFixture(t, InitOptions{})
	addr := startCoAP(t, f.dir, ServeOptions{})
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(m message.Message) {
		buf := make([]byte, 256)
		n, err := coder.DefaultCoder.Encode(m, buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	withPath := func(m message.Message) message.Message {
		m.Options = make(message.Options, 0, 8)
		var err error
		if m.Options, _, err = m.Options.SetPath(make([]byte, 64), "/metadata/timestamp.json"); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(message.Message{Type: message.Reset, Code: codes.Empty, MessageID: 76})
	// A Reset or ACK carrying a request code, left to go-coap, is answered
	// with a Confirmable response.
	send(withPath(message.Message{Type: message.Reset, Code: codes.GET, MessageID: 77, Token: []byte{1}}))
	send(withPath(message.Message{Type: message.Acknowledgement, Code: codes.GET, MessageID: 78, Token: []byte{2}}))
	send(message.Message{Type: message.NonConfirmable, Code: codes.Empty, MessageID: 79})
	send(withPath(message.Message{Type: message.Confirmable, Code: codes.GET, MessageID: 80, Token: []byte{9, 9}}))
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != message.Acknowledgement || got.MessageID != 80 || got.Code != codes.Content {
		t.Fatalf("first datagram after Reset: %v %v mid %d, want the ACK 2.05 of mid 80", got.Type, got.Code, got.MessageID)
	}
}

func TestServeCoAPRejectsBadBlockSize(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ServeCoAP(context.Background(), conn, t.TempDir(), ServeOptions{BlockSize: 1000}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("BlockSize 1000: %v, want ErrInvalid", err)
	}
}

func BenchmarkCoAPBlockServe(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "repo")
	if err := Init(dir, InitOptions{}); err != nil {
		b.Fatal(err)
	}
	big := filepath.Join(b.TempDir(), "big.bin")
	if err := os.WriteFile(big, bytes.Repeat([]byte{7}, 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	tg, err := AddTarget(dir, big, "m", "1", AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := "/targets/m/1/" + tg.Hashes["sha256"] + ".big.bin"
	cc := dialCoAP(b, startCoAP(b, dir, ServeOptions{}))
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if blk := getBlock(b, cc, p, blockwise.SZX1024, int64(i%1024), message.Confirmable); blk.code != codes.Content {
			b.Fatal(blk.code)
		}
	}
}

func TestServeCoAPStopsWhenCancelledEarly(t *testing.T) {
	f := newFixture(t, InitOptions{})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ServeCoAP(ctx, conn, f.dir, ServeOptions{}); err != nil {
		t.Fatalf("ServeCoAP with a cancelled context: %v", err)
	}
	if _, err := conn.WriteTo([]byte{0}, conn.LocalAddr()); err == nil {
		t.Fatal("conn still open after ServeCoAP returned")
	}
}

// rawUDP is a UDP socket connected to addr.
func rawUDP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A retransmitted Confirmable GET is answered again, from the file: the
// server keeps no exchange state (RFC 7252 §4.5 allows this for
// idempotent requests).
func TestCoAPDuplicateAnsweredAgain(t *testing.T) {
	f := newFixture(t, InitOptions{})
	c := rawUDP(t, startCoAP(t, f.dir, ServeOptions{}))
	for i := range 2 {
		if m := getTimestamp(t, c, 0x4242); m.Type != message.Acknowledgement || m.MessageID != 0x4242 || m.Code != codes.Content {
			t.Fatalf("copy %d: %v %v mid %#x", i, m.Type, m.Code, m.MessageID)
		}
	}
}

// Malformed datagrams draw no answer (a Reset for an intact CON header)
// and are reported to ServeOptions.Errors.
func TestCoAPMalformedReported(t *testing.T) {
	f := newFixture(t, InitOptions{})
	errs := make(errorSink, 64)
	c := rawUDP(t, startCoAP(t, f.dir, ServeOptions{Errors: errs.report}))
	if _, err := c.Write([]byte{0x40, 0x01, 0x12, 0x34, 0xf1, 0}); err != nil {
		t.Fatal(err)
	}
	err := errs.waitError(t, "malformed")
	if !errors.Is(err, message.ErrOptionUnexpectedExtendMarker) {
		t.Fatalf("reported %v, want the decoder's error wrapped", err)
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeResp(t, buf[:n]); m.Type != message.Reset || m.MessageID != 0x1234 {
		t.Fatalf("answer %v mid %#x, want Reset 0x1234", m.Type, m.MessageID)
	}
}

// A socket closed by someone else ends ServeCoAP with an error.
func TestServeCoAPConnClosed(t *testing.T) {
	f := newFixture(t, InitOptions{})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeCoAP(context.Background(), conn, f.dir, ServeOptions{}) }()
	_ = conn.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ServeCoAP after Close: %v, want net.ErrClosed", err)
	}
}
