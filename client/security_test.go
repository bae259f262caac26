package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
)

// writeCreds writes a device credential file granting the PSK identity
// "operator" (full access under the default access control).
func writeCreds(t *testing.T, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "creds.json")
	body := `{"psk": [{"identity": "operator", "key_hex": "` + hex.EncodeToString(key) + `"}]}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecure: a device with its secure defaults serves the update
// resource only over CoAPs to a peer it knows; the client finds the coaps
// endpoint through /oic/res and updates the device over it.
func TestSecure(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	repo := newRepo(t, "vault", 4<<10, "1.0.0", "1.1.0")
	dev := startSecureDaemon(t, append(repo.deviceArgs("vault", "1.0.0"), "--restart=false", "--creds", writeCreds(t, key))...)

	t.Run("plain is refused", func(t *testing.T) {
		d := open(t, dev.Endpoint) // /oic/res is open to everybody
		_, err := d.Status(ctxT(t))
		de, ok := errors.AsType[*client.DeviceError](err)
		if !ok || de.Code != codes.Unauthorized {
			t.Fatalf("plain read: %v, want 4.01 with the device's diagnostic", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Second) // the device drops a bad handshake silently
		defer cancel()
		bad := &client.Security{PSKIdentity: "operator", PSK: []byte("not the right key at all")}
		if _, err := client.OpenSecure(ctx, dev.Secure, bad); err == nil || !strings.Contains(err.Error(), "handshake") {
			t.Fatalf("wrong PSK: %v, want a failed handshake", err)
		}
	})
	t.Run("upgrade over coaps", func(t *testing.T) {
		sec := &client.Security{PSKIdentity: "operator", PSK: key}
		d, err := client.OpenSecure(ctxT(t), dev.Endpoint, sec) // found through /oic/res
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if d.Endpoint() != dev.Secure {
			t.Errorf("endpoint %s, want the coaps one %s", d.Endpoint(), dev.Secure)
		}
		if _, err := d.Update(ctxT(t), client.Update{PURL: &repo.purl, Action: client.ActionUpgrade}); err != nil {
			t.Fatal(err)
		}
		s, err := d.Wait(ctxT(t), client.WatchOptions{Poll: 100 * time.Millisecond}, nil)
		if err != nil || s.Result != client.ResultSuccess {
			t.Fatalf("wait: %+v, %v", s, err)
		}
		found, err := client.Discover(ctxT(t), client.DiscoverOptions{Endpoints: []string{dev.Secure}, Security: sec})
		if err != nil || len(found) != 1 || found[0].Err != nil || found[0].Info.SoftwareVersion != "1.1.0" {
			t.Fatalf("discover over coaps: %+v, %v", found, err)
		}
	})
}
