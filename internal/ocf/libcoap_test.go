package ocf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Real-peer tests with libcoap's coap-client (Debian libcoap3-bin). CI must
// have it; a developer machine without it skips.

func coapClient(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("coap-client-notls")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("coap-client-notls not found (apt-get install libcoap3-bin): %v", err)
		}
		t.Skip("coap-client-notls not installed (Debian libcoap3-bin)")
	}
	return path
}

// runCoapClient runs coap-client with args and returns what it wrote to
// stdout (-o -: the payloads, raw).
func runCoapClient(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-B", "20", "-o", "-"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("coap-client %v: %v\n%s", args, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("coap-client stderr: %s", stderr.String())
	}
	return stdout.Bytes()
}

// decodeAll decodes the concatenated CBOR items coap-client printed.
func decodeAll(t *testing.T, b []byte) []any {
	t.Helper()
	var out []any
	dec := cbor.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode coap-client output %x: %v", b, err)
		}
		out = append(out, v)
	}
}

func TestLibcoapClient(t *testing.T) {
	bin := coapClient(t)
	count := newCounter("/count")
	big, bigRep := bigResource()
	s, addr := startServer(t, testConfig(t), echoResource(), count, big)
	base := "coap://" + addr

	t.Run("discovery with -A 60", func(t *testing.T) {
		var links []link
		if err := Decode(runCoapClient(t, bin, "-A", "60", base+"/oic/res?rt=oic.wk.d"), &links); err != nil {
			t.Fatalf("decode /oic/res: %v", err)
		}
		if len(links) != 1 || links[0].Href != HrefDevice || links[0].EPS[0].EP != base {
			t.Fatalf("links = %+v", links)
		}
	})

	t.Run("device", func(t *testing.T) {
		var d deviceRep
		if err := Decode(runCoapClient(t, bin, base+"/oic/d"), &d); err != nil {
			t.Fatalf("decode /oic/d: %v", err)
		}
		if d.DI != testDI || d.SV != "1.0.0" {
			t.Fatalf("/oic/d = %+v", d)
		}
	})

	t.Run("POST from a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "body.cbor")
		if err := os.WriteFile(file, mustEncode(t, map[string]any{"purl": "https://example.com/repo"}), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMap(runCoapClient(t, bin, "-m", "post", "-f", file, "-t", "60", base+"/echo"))
		if err != nil || m["purl"] != "https://example.com/repo" {
			t.Fatalf("POST echo = %v, %v", m, err)
		}
	})

	t.Run("block-wise GET", func(t *testing.T) {
		if got := runCoapClient(t, bin, base+"/big"); !bytes.Equal(got, bigRep) {
			t.Fatalf("GET /big: %d bytes, want %d", len(got), len(bigRep))
		}
	})

	t.Run("observe a block-wise resource", func(t *testing.T) {
		done := make(chan []byte, 1)
		start := len(big.requests())
		go func() { done <- runCoapClient(t, bin, "-s", "2", base+"/big") }()
		eventually(t, "libcoap registered", func() bool { return s.obs.count() == 1 })
		// Notify once libcoap has all blocks of the registration reply:
		// a notification in the middle of them makes it drop the rest of
		// the notification (seen under load).
		blocks := (len(bigRep) + 1023) / 1024
		eventually(t, "registration reply fetched", func() bool { return len(big.requests()) >= start+blocks })
		s.Notify("/big")
		got := <-done
		if !bytes.Equal(got, append(append([]byte(nil), bigRep...), bigRep...)) {
			t.Fatalf("observed %d bytes, want the %d-byte representation twice", len(got), len(bigRep))
		}
		eventually(t, "libcoap deregistered", func() bool { return s.obs.count() == 0 })
	})

	t.Run("observe", func(t *testing.T) {
		done := make(chan []byte, 1)
		go func() { done <- runCoapClient(t, bin, "-s", "3", base+"/count") }()
		eventually(t, "libcoap registered", func() bool { return s.obs.count() == 1 })
		for i := uint64(1); i <= 3; i++ {
			// Wait until this notification was served, so each is its own.
			before := len(count.requests())
			count.n.Store(i)
			s.Notify("/count")
			eventually(t, "notification served", func() bool { return len(count.requests()) > before || s.obs.count() == 0 })
		}
		var ns []uint64
		for _, v := range decodeAll(t, <-done) {
			m, ok := v.(map[any]any)
			if !ok {
				t.Fatalf("payload %v is not a map", v)
			}
			ns = append(ns, m["n"].(uint64))
		}
		if len(ns) < 2 || ns[0] != 0 || ns[len(ns)-1] != 3 || !slices.IsSorted(ns) {
			t.Fatalf("observed n = %v, want 0 … 3 in order", ns)
		}
	})
}
