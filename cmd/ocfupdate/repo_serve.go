package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	piondtls "github.com/pion/dtls/v3"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// defaultHTTPS is where serve listens without flags: loopback, so that a
// first try exposes nothing; devices on a network need --https :8443.
const defaultHTTPS = "127.0.0.1:8443"

// repoServeArgs are the arguments of "repo serve".
type repoServeArgs struct {
	dir       string
	https     string // TCP address; empty: no HTTPS
	coap      string // UDP address; empty: no CoAP
	coaps     string // UDP address; empty: no CoAP over DTLS
	tlsCert   string
	tlsKey    string
	tlsHosts  []string // extra names for the generated certificate
	blockSize int
}

func repoServeCmd(e *env) *cobra.Command {
	var a repoServeArgs
	cmd := &cobra.Command{
		Use:   "serve DIR [--https ADDR] [--coap ADDR] [--coaps ADDR]",
		Short: "Serve the repository over HTTPS, CoAP and CoAPs until stopped",
		Long: `Serve DIR/repository (metadata and packages, nothing else) until SIGINT or
SIGTERM, then stop cleanly and exit 0.

HTTPS answers GET and HEAD with Range and ETag, so downloads resume. CoAP (UDP)
and CoAPs (DTLS) answer GET with Block2, ETag and Size2 on every block. Plain
CoAP carries no confidentiality, but devices verify every file against the
signed metadata; they accept coap:// only when configured to allow insecure
sources.

Once every listener is bound it prints one line per listener on stdout:

  serving https://HOST:PORT
  serving coap://HOST:PORT
  serving coaps://HOST:PORT

(port 0 picks a free port; scripts read the lines). Each URL is the
repository's base URL, the purl for devices. An empty address turns a listener
off; by default only HTTPS listens, on ` + defaultHTTPS + `.

HTTPS and CoAPs use --tls-cert and --tls-key (PEM). Without them serve uses a
self-signed certificate in DIR/tls (created, or reused while valid) for
localhost, 127.0.0.1, ::1, the listen addresses and --tls-host names, and
prints "tls certificate: PATH" on stderr: devices must trust that file. CoAPs
uses the same certificate and does not ask clients for one.`,
		Example: `  ocfupdate repo serve ./repo
  ocfupdate repo serve ./repo --https 127.0.0.1:0 --coap 127.0.0.1:0
  ocfupdate repo serve ./repo --https :8443 --coaps :5684 --tls-host repo.lan`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoServe(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.https, "https", defaultHTTPS, "HTTPS listen `ADDR` (\"\" for none)")
	f.StringVar(&a.coap, "coap", "", "CoAP (UDP) listen `ADDR`, e.g. :5683 (default none)")
	f.StringVar(&a.coaps, "coaps", "", "CoAP over DTLS listen `ADDR`, e.g. :5684 (default none)")
	f.StringVar(&a.tlsCert, "tls-cert", "", "certificate `FILE` (PEM) for HTTPS and CoAPs (default: self-signed in DIR/tls)")
	f.StringVar(&a.tlsKey, "tls-key", "", "private key `FILE` (PEM) of --tls-cert")
	f.StringSliceVar(&a.tlsHosts, "tls-host", nil, "extra DNS name or IP (`HOST`) for the self-signed certificate; repeatable")
	f.IntVar(&a.blockSize, "block-size", 1024, "CoAP Block2 size in `BYTES` when the client asks for none or a larger one: 16 to 1024, a power of two")
	return cmd
}

func (a *repoServeArgs) validate() error {
	if a.https == "" && a.coap == "" && a.coaps == "" {
		return usagef("nothing to serve: --https, --coap and --coaps are all empty")
	}
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if a.tlsCert != "" && len(a.tlsHosts) > 0 {
		return usagef("--tls-host applies to the self-signed certificate, not to --tls-cert")
	}
	if a.blockSize < 16 || a.blockSize > 1024 || a.blockSize&(a.blockSize-1) != 0 {
		return usagef("--block-size %d: want 16, 32, 64, 128, 256, 512 or 1024", a.blockSize)
	}
	return nil
}

// server is one bound listener, ready to serve until its ctx is done.
type server struct {
	url   string
	serve func(ctx context.Context) error
	close func() // releases the listener when serve is never called
}

func runRepoServe(ctx context.Context, e *env, a *repoServeArgs) error {
	if err := a.validate(); err != nil {
		return err
	}
	if _, err := tufrepo.TrustedRoot(a.dir); err != nil {
		return err // fail before binding anything
	}
	stderr := &lockedWriter{w: e.stderr}
	opts := tufrepo.ServeOptions{
		BlockSize: a.blockSize,
		// Failed handshakes and malformed requests: worth seeing, not fatal.
		Errors: func(err error) { fmt.Fprintf(stderr, "ocfupdate: serve: %s\n", oneLine(err.Error())) },
	}
	var tlsConfig *tls.Config
	if a.https != "" || a.coaps != "" {
		var err error
		if tlsConfig, err = a.loadTLS(stderr); err != nil {
			return err
		}
	}
	servers, err := a.listen(tlsConfig, opts)
	if err != nil {
		return err
	}
	for _, s := range servers {
		// Unbuffered writes: a script waiting for the line gets it now.
		if _, err := fmt.Fprintf(e.stdout, "serving %s\n", s.url); err != nil {
			for _, s := range servers {
				s.close()
			}
			return fmt.Errorf("write output: %w", err)
		}
	}
	return serveAll(ctx, servers)
}

// loadTLS loads the given pair, or creates (or reuses) the self-signed one
// in DIR/tls and says where its certificate is.
func (a *repoServeArgs) loadTLS(stderr *lockedWriter) (*tls.Config, error) {
	certPath, keyPath := a.tlsCert, a.tlsKey
	if certPath == "" {
		hosts := append([]string{}, a.tlsHosts...)
		for _, addr := range []string{a.https, a.coaps} {
			if h := specificHost(addr); h != "" {
				hosts = append(hosts, h)
			}
		}
		var err error
		if certPath, keyPath, err = tufrepo.GenerateSelfSigned(a.dir, hosts...); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "tls certificate: %s\n", certPath)
	}
	return tufrepo.LoadTLSConfig(certPath, keyPath)
}

// specificHost returns the host of a listen address unless it is empty or
// a wildcard, which no certificate can name.
func specificHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return host
}

// listen binds every configured listener, or none: on an error it releases
// those already bound.
func (a *repoServeArgs) listen(tlsConfig *tls.Config, opts tufrepo.ServeOptions) (servers []server, err error) {
	defer func() {
		if err != nil {
			for _, s := range servers {
				s.close()
			}
		}
	}()
	if a.https != "" {
		ln, err := net.Listen("tcp", a.https)
		if err != nil {
			return servers, fmt.Errorf("https: %w", err)
		}
		servers = append(servers, server{
			url:   "https://" + ln.Addr().String(),
			serve: func(ctx context.Context) error { return tufrepo.ServeHTTPS(ctx, ln, a.dir, tlsConfig, opts) },
			close: func() { _ = ln.Close() },
		})
	}
	if a.coap != "" {
		udpAddr, err := net.ResolveUDPAddr("udp", a.coap)
		if err != nil {
			return servers, fmt.Errorf("coap: %w", err)
		}
		conn, err := net.ListenUDP("udp", udpAddr)
		if err != nil {
			return servers, fmt.Errorf("coap: %w", err)
		}
		servers = append(servers, server{
			url:   "coap://" + conn.LocalAddr().String(),
			serve: func(ctx context.Context) error { return tufrepo.ServeCoAP(ctx, conn, a.dir, opts) },
			close: func() { _ = conn.Close() },
		})
	}
	if a.coaps != "" {
		ln, err := coapNet.NewDTLSListener("udp", a.coaps, coapNet.NewDTLSServerOptions(
			piondtls.WithCertificates(tlsConfig.Certificates...),
		))
		if err != nil {
			return servers, fmt.Errorf("coaps: %w", err)
		}
		servers = append(servers, server{
			url:   "coaps://" + ln.Addr().String(),
			serve: func(ctx context.Context) error { return tufrepo.ServeCoAPs(ctx, ln, a.dir, opts) },
			close: func() { _ = ln.Close() },
		})
	}
	return servers, nil
}

// serveAll runs the servers until ctx is done, or until one fails, which
// stops the others; it returns once all have returned.
func serveAll(ctx context.Context, servers []server) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.serve(ctx) }()
	}
	var errs []error
	for range servers {
		if err := <-errc; err != nil {
			errs = append(errs, err)
			cancel()
		}
	}
	return errors.Join(errs...)
}
