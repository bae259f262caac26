package creds

import (
	"context"
	"fmt"
	"net"

	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
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
	cc := coapsdial.Credentials{RootCAs: c.SourceRoots(true), ServerName: host, Certificate: c.Certificate}
	if p := c.SourcePSK; p != nil {
		cc = coapsdial.Credentials{PSKIdentity: p.Identity, PSK: []byte(p.Key)}
	}
	return coapsdial.Dial(ctx, addr, cc, opts...)
}
