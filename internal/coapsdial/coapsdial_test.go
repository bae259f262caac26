package coapsdial

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silentServer is a UDP socket that reads and never answers, like a
// server with another key that drops our flights, or a firewall.
func silentServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// TestDialSilentServerEndsWithCtx: the handshake with a server that never
// answers ends when ctx does, every time. It used to hang for good when
// go-coap's read goroutine began the handshake first.
func TestDialSilentServerEndsWithCtx(t *testing.T) {
	addr := silentServer(t)
	creds := []struct {
		name string
		c    Credentials
	}{
		{"psk", Credentials{PSKIdentity: "op", PSK: []byte("0123456789abcdef")}},
		{"certificate", Credentials{ServerName: "device.example"}},
	}
	for _, tt := range creds {
		t.Run(tt.name, func(t *testing.T) {
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				done := make(chan error, 1)
				go func() {
					cc, err := Dial(ctx, addr, tt.c)
					if cc != nil {
						_ = cc.Close()
					}
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil {
						t.Fatal("a silent server completed a handshake")
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Logf("error %v", err) // pion may word the timeout its own way
					}
				case <-time.After(30 * time.Second):
					t.Fatal("Dial did not return after its context ended: hung in the handshake")
				}
				cancel()
			}
		})
	}
}

func TestDialRefusesIncompleteCredentials(t *testing.T) {
	for _, c := range []Credentials{
		{PSK: []byte("k")},    // no identity
		{PSKIdentity: "only"}, // neither PSK nor server name
	} {
		if cc, err := Dial(context.Background(), "127.0.0.1:1", c); err == nil {
			cc.Close()
			t.Errorf("Dial(%+v) succeeded", c)
		}
	}
}
