package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	piondtls "github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/plgd-dev/go-coap/v3/dtls"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Security is how the client authenticates to a device's CoAPs (DTLS)
// endpoint: a pre-shared key, or a certificate. Devices serve the software
// update resource and pstat only to authenticated peers that their access
// control allows (plain CoAP carries discovery and /oic/d).
type Security struct {
	// PSKIdentity and PSK are a pre-shared key the device knows (16 to 64
	// bytes). With a PSK the handshake uses PSK cipher suites only.
	PSKIdentity string
	PSK         []byte
	// Certificate is the client's certificate chain and ECDSA P-256 key,
	// for certificate handshakes (when there is no PSK).
	Certificate *tls.Certificate
	// RootCAs are the trust anchors the device's certificate must chain
	// to (certificate handshakes; nil: the system roots).
	RootCAs *x509.CertPool
	// ServerName is the name the device's certificate must carry. Empty:
	// the endpoint's host.
	ServerName string
}

func (s *Security) validate() error {
	switch {
	case s == nil:
		return errors.New("coaps needs credentials (a PSK or a certificate)")
	case len(s.PSK) > 0 && s.PSKIdentity == "":
		return errors.New("a PSK needs its identity")
	case len(s.PSK) == 0 && s.Certificate == nil:
		return errors.New("coaps needs credentials (a PSK or a certificate)")
	}
	return nil
}

// Cipher suites offered: those the device offers (internal/ocf), the
// CCM_8 ones RFC 7252 makes mandatory first.
var (
	pskSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_PSK_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
		piondtls.TLS_PSK_WITH_AES_128_CCM,
		piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	}
	certSuites = []piondtls.CipherSuiteID{
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	}
)

// DialSecure connects to endpoint ("coaps://host:port", or host:port with
// default port 5684) over CoAPs and completes the DTLS handshake within
// ctx.
func DialSecure(ctx context.Context, endpoint string, sec *Security) (*Conn, error) {
	scheme, addr, err := SplitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if scheme == SchemeCoAP && strings.Contains(endpoint, "://") {
		return nil, fmt.Errorf("endpoint %q: DialSecure needs a coaps:// endpoint", endpoint)
	}
	return dial(ctx, SchemeCoAPS, addr, sec)
}

// dialDTLS opens the DTLS connection with go-coap's options and shakes
// hands at once, so that a refused handshake is reported as such.
func dialDTLS(ctx context.Context, addr string, sec *Security, opts []udp.Option) (*udpClient.Conn, error) {
	if err := sec.validate(); err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	dopts := []piondtls.ClientOption{piondtls.WithLoggerFactory(quietLogs{})}
	if len(sec.PSK) > 0 {
		key := slices.Clone(sec.PSK)
		dopts = append(dopts,
			piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
			piondtls.WithPSKIdentityHint([]byte(sec.PSKIdentity)),
			piondtls.WithCipherSuites(pskSuites...))
	} else {
		name := sec.ServerName
		if name == "" {
			name, _, _ = strings.Cut(host, "%") // a zone is no part of a certificate name
		}
		dopts = append(dopts,
			piondtls.WithCertificates(*sec.Certificate),
			piondtls.WithServerName(name),
			piondtls.WithCipherSuites(certSuites...))
		if sec.RootCAs != nil {
			dopts = append(dopts, piondtls.WithRootCAs(sec.RootCAs))
		}
	}
	cc, err := dtls.Dial(addr, dtls.NewDTLSClientOptions(dopts...), opts...)
	if err != nil {
		return nil, fmt.Errorf("dial coaps %s: %w", addr, err)
	}
	dc, ok := cc.NetConn().(*piondtls.Conn)
	if !ok {
		_ = cc.Close()
		<-cc.Done()
		return nil, fmt.Errorf("dial coaps %s: not a DTLS connection", addr)
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		_ = cc.Close()
		<-cc.Done()
		return nil, fmt.Errorf("dial coaps %s: handshake: %w", addr, err)
	}
	return cc, nil
}

// quietLogs discards pion's log lines: failures are returned as errors,
// and pion's default logger writes to stderr.
type quietLogs struct{}

func (quietLogs) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

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

// secureEndpoint finds, in the links of /oic/res read over plain CoAP, the
// coaps endpoint of the device's software update resource; it prefers one
// on the host the device was reached at.
func secureEndpoint(links []Link, host string) (string, bool) {
	var first string
	for _, l := range links {
		for _, e := range l.Eps {
			scheme, addr, err := SplitEndpoint(e.EP)
			if err != nil || scheme != SchemeCoAPS {
				continue
			}
			if h, _, _ := net.SplitHostPort(addr); h == host {
				return e.EP, true
			}
			if first == "" {
				first = e.EP
			}
		}
	}
	return first, first != ""
}
