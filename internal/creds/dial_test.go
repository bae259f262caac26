package creds_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/pkg/runner/periodic"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
)

// packageServer is a CoAPs server answering "ok" at /pkg, standing in for
// a coaps package source. It records the PSK identity it was offered.
func packageServer(t *testing.T, opts ...piondtls.ServerOption) string {
	t.Helper()
	l, err := coapNet.NewDTLSListener("udp4", "127.0.0.1:0", coapNet.NewDTLSServerOptions(opts...))
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	if err := r.Handle("/pkg", mux.HandlerFunc(func(w mux.ResponseWriter, _ *mux.Message) {
		_ = w.SetResponse(codes.Content, message.TextPlain, bytes.NewReader([]byte("ok")))
	})); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := dtls.NewServer(options.WithMux(r), options.WithErrors(func(error) {}),
		options.WithPeriodicRunner(periodic.New(stop, 100*time.Millisecond)))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		_ = l.Close()
		close(stop)
	})
	return l.Addr().String()
}

// get fetches /pkg through DialCoAPS.
func get(t *testing.T, c *creds.Credentials, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	cc, err := c.DialCoAPS(ctx, addr, options.WithPeriodicRunner(periodic.New(stop, 100*time.Millisecond)))
	if err != nil {
		return err
	}
	defer func() { _ = cc.Close(); <-cc.Done() }()
	resp, err := cc.Get(ctx, "/pkg")
	if err != nil {
		t.Fatalf("GET over the dialled connection: %v", err)
	}
	if b, _ := resp.ReadBody(); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	return nil
}

// TestDialCoAPS: the device presents source.psk, or its certificate, and
// verifies a package server's certificate against source.ca.
func TestDialCoAPS(t *testing.T) {
	ca := credstest.NewCA(t, "operators")
	dir := provision(t, ca)
	c, err := creds.Load(filepath.Join(dir, "creds.json"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("psk", func(t *testing.T) {
		var offered []byte
		addr := packageServer(t,
			piondtls.WithPSK(func(id []byte) ([]byte, error) { offered = id; return srcKey, nil }),
			piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8))
		if err := get(t, c, addr); err != nil {
			t.Fatal(err)
		}
		if string(offered) != "boiler-17" {
			t.Fatalf("offered identity %q", offered)
		}
	})

	t.Run("wrong psk", func(t *testing.T) {
		addr := packageServer(t,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return []byte("another-key-00000"), nil }),
			piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8))
		if err := get(t, c, addr); err == nil {
			t.Fatal("handshake with the wrong key succeeded")
		}
	})

	// Without source.psk: certificates. The repository server's
	// certificate comes from the CA in source.ca; it asks for the device's.
	repoCA := credstest.NewCA(t, "repo")
	credstest.WriteFile(t, dir, "repo-ca.pem", repoCA.PEM, 0o644)
	credstest.WriteJSON(t, dir, "creds.json", map[string]any{
		"cert": "device.pem", "key": "device.key", "ca": []string{"ca.pem"},
		"source": map[string]any{"ca": []string{"repo-ca.pem"}},
	}, 0o600)
	c, err = creds.Load(filepath.Join(dir, "creds.json"))
	if err != nil {
		t.Fatal(err)
	}
	certServer := func(t *testing.T, cert tls.Certificate, clientAuth piondtls.ClientAuthType) string {
		return packageServer(t,
			piondtls.WithCertificates(cert),
			piondtls.WithClientCAs(ca.Pool()),
			piondtls.WithClientAuth(clientAuth),
			piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8))
	}

	t.Run("certificates both ways", func(t *testing.T) {
		if err := get(t, c, certServer(t, repoCA.TLSCertificate(t, "repo.example"), piondtls.RequireAndVerifyClientCert)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("server certificate only", func(t *testing.T) {
		if err := get(t, c, certServer(t, repoCA.TLSCertificate(t, "repo.example"), piondtls.NoClientCert)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("server certificate from an unknown CA", func(t *testing.T) {
		stranger := credstest.NewCA(t, "stranger")
		if err := get(t, c, certServer(t, stranger.TLSCertificate(t, "repo.example"), piondtls.NoClientCert)); err == nil {
			t.Fatal("an untrusted server certificate was accepted")
		}
	})
}
