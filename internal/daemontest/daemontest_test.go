package daemontest

import (
	"net"
	"strings"
	"sync"
	"testing"
)

func TestBuffer(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String() // a reader while others write: -race checks the lock
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 400) {
		t.Fatalf("buffer holds %d bytes, want 400", len(got))
	}
}

func TestDeadEndpoint(t *testing.T) {
	ep := DeadEndpoint(t)
	addr, ok := strings.CutPrefix(ep, "coap://127.0.0.1:")
	if !ok || addr == "" {
		t.Fatalf("DeadEndpoint() = %q, want coap://127.0.0.1:PORT", ep)
	}
	// Nothing holds the port: it can be bound again.
	c, err := net.ListenPacket("udp4", strings.TrimPrefix(ep, "coap://"))
	if err != nil {
		t.Fatalf("port of %s is in use: %v", ep, err)
	}
	_ = c.Close()
}
