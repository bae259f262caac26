package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/plgd-dev/go-coap/v3/udp"
	udpclient "github.com/plgd-dev/go-coap/v3/udp/client"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxRetries      = 5
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 30 * time.Second
	DefaultCoAPBlockSize   = 1024
	DefaultFreeSpaceMargin = 1 << 20
	DefaultUserAgent       = "ocfupdate"
)

// DialFunc opens a CoAP client connection to addr ("host:port"). opts must be
// passed on to go-coap: they disable its block-wise layer, route its errors
// to the Downloader's logger, tie the connection to the attempt and stop its
// timers when it closes. ctx bounds the dial and handshake (Config.Timeout).
// A coaps DialFunc typically wraps dtls.Dial from go-coap's dtls package
// with the device's PSK or certificate configuration, and should complete
// the handshake before returning (pion shakes hands lazily otherwise).
// Its error decides the result: a *step.Error is used as is (say 5 for
// credentials the server refused), anything else counts as a lost
// connection (4, retried).
type DialFunc func(ctx context.Context, addr string, opts ...udp.Option) (*udpclient.Conn, error)

// FreeSpaceFunc returns the bytes available to this process in the file
// system holding dir.
type FreeSpaceFunc func(dir string) (int64, error)

// Config configures a Downloader. The zero value is usable: https and coaps
// (coaps only with DialCoAPS), system trust roots, default bounds.
type Config struct {
	// HTTPClient, when set, is used for http(s) as given except that its
	// CheckRedirect is replaced to enforce the scheme policy on redirects.
	// Leave it nil to have one built from TLSConfig; setting both is an error.
	HTTPClient *http.Client
	// TLSConfig is the TLS configuration for https, typically to set RootCAs
	// (nil: the system roots).
	TLSConfig *tls.Config

	// DialCoAPS opens DTLS connections for coaps URLs. Nil: coaps URLs fail
	// with result 7 ("coaps needs credentials (not configured)").
	DialCoAPS DialFunc
	// CoAPBlockSize is the Block2 size asked for over CoAP: a power of two
	// from 16 to 1024 (0: 1024). The server may choose a smaller one.
	CoAPBlockSize int

	// AllowInsecure also accepts http and coap URLs (tests, lab setups).
	AllowInsecure bool

	// Timeout bounds each wait for the server: connecting, a response, the
	// next bytes of a body, one CoAP block (0: DefaultTimeout).
	Timeout time.Duration
	// MaxRetries is how many failed attempts in a row without progress are
	// retried (0: DefaultMaxRetries; negative: never retry).
	MaxRetries int
	// BackoffMin and BackoffMax bound the wait before a retry, which doubles
	// from BackoffMin up to BackoffMax, with jitter (0: the defaults).
	BackoffMin time.Duration
	BackoffMax time.Duration

	// FreeSpace reports the free bytes in a directory (nil: statfs; on
	// systems without it the check is skipped).
	FreeSpace FreeSpaceFunc
	// FreeSpaceMargin is kept free on top of the rest of the package
	// (0: DefaultFreeSpaceMargin; negative: no margin).
	FreeSpaceMargin int64

	// UserAgent is sent on http(s) requests (empty: DefaultUserAgent).
	UserAgent string
	// Logger receives progress and retry messages (nil: discarded).
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.CoAPBlockSize == 0 {
		c.CoAPBlockSize = DefaultCoAPBlockSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.FreeSpace == nil {
		c.FreeSpace = freeSpace
	}
	switch {
	case c.FreeSpaceMargin == 0:
		c.FreeSpaceMargin = DefaultFreeSpaceMargin
	case c.FreeSpaceMargin < 0:
		c.FreeSpaceMargin = 0
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// validate reports a configuration that cannot work. It runs after
// withDefaults, so zero values have already been replaced.
func (c Config) validate() error {
	var errs []error
	if c.HTTPClient != nil && c.TLSConfig != nil {
		errs = append(errs, errors.New("set HTTPClient or TLSConfig, not both"))
	}
	if _, ok := blockSZX(c.CoAPBlockSize); !ok {
		errs = append(errs, fmt.Errorf("CoAPBlockSize %d is not a power of two from 16 to 1024", c.CoAPBlockSize))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("negative Timeout %v", c.Timeout))
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff bounds %v..%v are not 0 <= min <= max", c.BackoffMin, c.BackoffMax))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fetch config: %w", err)
	}
	return nil
}
