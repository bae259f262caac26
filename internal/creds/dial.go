package creds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Cipher suites the device offers to coaps package servers: PSK ones with
// source.psk, certificate ones without.
var (
	clientPSKSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_PSK_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
		piondtls.TLS_PSK_WITH_AES_128_CCM,
		piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	}
	clientCertSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	}
)

// DialCoAPS opens a CoAPs connection to a package server at addr
// ("host:port") and completes the handshake within ctx. It has the
// signature of internal/fetch's DialFunc.
//
// With source.psk the handshake is PSK: the key authenticates both sides.
// Without it, the server must present a certificate that chains to the
// system roots or source.ca and names host (a DNS name or IP address in
// its subject alternative names), and the device presents its own
// certificate if the server asks for one. One or the other: pion's client
// treats every handshake as PSK once a PSK is configured.
func (c *Credentials) DialCoAPS(ctx context.Context, addr string, opts ...udp.Option) (*udpClient.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	dopts := []piondtls.ClientOption{piondtls.WithLoggerFactory(quietFactory{})}
	if p := c.SourcePSK; p != nil {
		key := slices.Clone([]byte(p.Key))
		dopts = append(dopts,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			piondtls.WithPSKIdentityHint([]byte(p.Identity)),
			piondtls.WithCipherSuites(clientPSKSuites...))
	} else {
		dopts = append(dopts,
			piondtls.WithRootCAs(c.SourceRoots(true)),
			piondtls.WithServerName(host),
			piondtls.WithCipherSuites(clientCertSuites...))
		if c.Certificate != nil {
			dopts = append(dopts, piondtls.WithCertificates(*c.Certificate))
		}
	}
	conn, err := dtls.Dial(addr, dtls.NewDTLSClientOptions(dopts...), opts...)
	if err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	// pion shakes hands on the first write; doing it here reports a
	// failed handshake as one, within ctx.
	dc, ok := conn.NetConn().(*piondtls.Conn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("dial coaps: not a DTLS connection")
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dial coaps %s: handshake: %w", addr, err)
	}
	return conn, nil
}

// quietFactory discards pion's log lines: a failed handshake is returned
// as an error, and pion's default logger would write to stderr.
type quietFactory struct{}

func (quietFactory) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

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
