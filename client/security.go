package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
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
	c := coapsdial.Credentials{PSKIdentity: sec.PSKIdentity, PSK: sec.PSK,
		Certificate: sec.Certificate, RootCAs: sec.RootCAs, ServerName: sec.ServerName}
	if c.ServerName == "" {
		c.ServerName, _, _ = strings.Cut(host, "%") // a zone is no part of a certificate name
	}
	return coapsdial.Dial(ctx, addr, c, opts...)
}

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
