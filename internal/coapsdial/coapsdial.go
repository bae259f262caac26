// Package coapsdial opens CoAP connections over DTLS (pion/dtls through
// go-coap) as a client, for the operator's tools and for the device's
// coaps package sources alike: with a pre-shared key, or with
// certificates, and with the handshake finished before Dial returns.
package coapsdial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"

	piondtls "github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/logging"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Cipher suites a client offers: the ones the device offers
// (internal/ocf), the CCM_8 ones RFC 7252 makes mandatory first.
var (
	PSKSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_PSK_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
		piondtls.TLS_PSK_WITH_AES_128_CCM,
		piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	}
	CertSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	}
)

// Credentials are what a client presents. With a PSK the handshake is PSK
// only (pion's client treats every handshake as PSK once a PSK is set);
// without one, the server must present a certificate that chains to
// RootCAs and names ServerName, and Certificate is presented if the server
// asks for one.
type Credentials struct {
	PSKIdentity string
	PSK         []byte
	Certificate *tls.Certificate // optional without a PSK
	RootCAs     *x509.CertPool   // nil: the system roots
	ServerName  string           // required without a PSK
}

// Dial connects to addr ("host:port") and completes the DTLS handshake
// within ctx, so that a refused handshake is reported as one rather than
// as a later request timing out.
func Dial(ctx context.Context, addr string, c Credentials, opts ...udp.Option) (*udpClient.Conn, error) {
	dopts := []piondtls.ClientOption{piondtls.WithLoggerFactory(quiet{})}
	switch {
	case len(c.PSK) > 0:
		if c.PSKIdentity == "" {
			return nil, fmt.Errorf("dial coaps %s: a PSK needs its identity", addr)
		}
		key := slices.Clone(c.PSK)
		dopts = append(dopts,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			piondtls.WithPSKIdentityHint([]byte(c.PSKIdentity)),
			piondtls.WithCipherSuites(PSKSuites...))
	case c.ServerName == "":
		return nil, fmt.Errorf("dial coaps %s: a certificate handshake needs the server's name", addr)
	default:
		dopts = append(dopts, piondtls.WithServerName(c.ServerName), piondtls.WithCipherSuites(CertSuites...))
		if c.RootCAs != nil {
			dopts = append(dopts, piondtls.WithRootCAs(c.RootCAs))
		}
		if c.Certificate != nil {
			dopts = append(dopts, piondtls.WithCertificates(*c.Certificate))
		}
	}
	return DialOptions(ctx, addr, dopts, opts...)
}

// DialOptions is Dial with pion's client options as they are, for callers
// (and tests) that need other suites or settings than Credentials give.
//
// The handshake runs here, on the bare DTLS connection, before go-coap
// gets it. Were go-coap's connection goroutine started first (as its
// dtls.Dial does), its first read would begin the handshake without a
// deadline, and HandshakeContext would then wait on pion's handshake lock
// whatever ctx says: a server that never answers hung the dial for good.
func DialOptions(ctx context.Context, addr string, dopts []piondtls.ClientOption, opts ...udp.Option) (*udpClient.Conn, error) {
	var nd net.Dialer
	uc, err := nd.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	dc, err := piondtls.ClientWithOptions(dtlsnet.PacketConnFromConn(uc), uc.RemoteAddr(), dopts...)
	if err != nil {
		_ = uc.Close()
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		_ = dc.Close()
		_ = uc.Close()
		return nil, fmt.Errorf("dial coaps %s: handshake: %w", addr, err)
	}
	return dtls.Client(dc, append(opts, options.WithCloseSocket())...), nil
}

// quiet discards pion's log lines: failures are returned as errors, and
// pion's default logger writes to stderr.
type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
