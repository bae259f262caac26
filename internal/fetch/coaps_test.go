package fetch

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	coapnet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/step/steptest"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// newCoAPSServer is newCoAPServer over DTLS with a pre-shared key.
func newCoAPSServer(t testing.TB, content pattern, psk []byte) *coapServer {
	t.Helper()
	return startCoAPServer(t, content, func(t testing.TB, opts []serverOption) coapListener {
		t.Helper()
		l, err := coapnet.NewDTLSListener("udp4", "127.0.0.1:0", coapnet.NewDTLSServerOptions(
			piondtls.WithPSK(func([]byte) ([]byte, error) { return psk, nil }),
			piondtls.WithPSKIdentityHint([]byte("ocfupdate-test")),
			piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
		))
		if err != nil {
			t.Fatal(err)
		}
		srv := dtls.NewServer(optionsAs[dtlsserver.Option](opts)...)
		return coapListener{l: l, addr: l.Addr().String(), serve: func() error { return srv.Serve(l) }, stop: srv.Stop}
	})
}

// pskDialer is a Config.DialCoAPS as the agent would build it.
func pskDialer(psk []byte, dials *atomic.Int64) DialFunc {
	return func(ctx context.Context, addr string, opts ...udp.Option) (*udpclient.Conn, error) {
		dials.Add(1)
		return coapsdial.Dial(ctx, addr, coapsdial.Credentials{PSKIdentity: "device", PSK: psk}, opts...)
	}
}

func TestDownloadCoAPS(t *testing.T) {
	psk := []byte{0xAB, 0xC1, 0x23, 0x45}
	content := pattern{size: 5*1024 + 7, seed: 14}
	srv := newCoAPSServer(t, content, psk)

	t.Run("matching key", func(t *testing.T) {
		var dials atomic.Int64
		cfg := coapConfig()
		cfg.AllowInsecure = false
		cfg.DialCoAPS = pskDialer(psk, &dials)
		d := newDownloader(t, cfg)
		dst := dstIn(t)
		if err := d.Download(context.Background(), srv.url("coaps"), dst, content.expect(t), nil); err != nil {
			t.Fatal(err)
		}
		checkFile(t, dst, content)
		if dials.Load() != 1 {
			t.Errorf("%d dials, want 1", dials.Load())
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		// A server that cannot decrypt the handshake stays silent, so to
		// the device a wrong key looks like a lost connection.
		var dials atomic.Int64
		cfg := coapConfig()
		cfg.DialCoAPS = pskDialer([]byte{1, 2, 3, 4}, &dials)
		d := newDownloader(t, cfg)
		err := d.Download(context.Background(), srv.url("coaps"), dstIn(t), content.expect(t), nil)
		if got := steptest.ResultOf(err); got != swu.ResultConnectionLost {
			t.Fatalf("result %d (%v), want 4", got, err)
		}
		if dials.Load() != 1+int64(cfg.MaxRetries) {
			t.Errorf("%d dials, want %d", dials.Load(), 1+cfg.MaxRetries)
		}
	})

	t.Run("dialer chooses the result", func(t *testing.T) {
		var dials atomic.Int64
		cfg := coapConfig()
		cfg.DialCoAPS = func(context.Context, string, ...udp.Option) (*udpclient.Conn, error) {
			dials.Add(1)
			return nil, &step.Error{Result: swu.ResultValidation, Detail: "The package server's certificate is not trusted", Err: errors.New("x509")}
		}
		d := newDownloader(t, cfg)
		err := d.Download(context.Background(), srv.url("coaps"), dstIn(t), content.expect(t), nil)
		if got := steptest.ResultOf(err); got != swu.ResultValidation {
			t.Fatalf("result %d (%v), want the dialer's 5", got, err)
		}
		if dials.Load() != 1 {
			t.Errorf("%d dials, want 1: result 5 is not retried", dials.Load())
		}
	})
}
