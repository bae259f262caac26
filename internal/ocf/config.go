package ocf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Defaults applied by NewServer to zero Config fields.
const (
	DefaultMaxObservers  = 64
	DefaultNotifyTimeout = 95 * time.Second // > MAX_TRANSMIT_WAIT (93 s) of RFC 7252
	DefaultICV           = "ocf.2.3.0"
	DefaultDMV           = "ocf.res.1.3.0,ocf.sh.1.3.0"
)

// Authorizer decides whether a peer may perform a request. It is called for
// every request to a known href, before Resource.Serve, with observe true for
// an Observe registration (and once more, earlier, for every POST, PUT and
// DELETE, before its body is buffered). It returns 0 (codes.Empty) to
// allow, or the error code to answer (typically codes.Unauthorized for an
// unauthenticated peer, codes.Forbidden for an authenticated one). /oic/res
// also asks it, with an anonymous Peer and GET, whether a resource may be
// advertised with its plain coap endpoints. A nil Authorizer allows
// everything; internal/acl is the device's.
type Authorizer interface {
	Authorize(peer Peer, href string, method codes.Code, observe bool) codes.Code
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(peer Peer, href string, method codes.Code, observe bool) codes.Code

// Authorize calls f.
func (f AuthorizerFunc) Authorize(peer Peer, href string, method codes.Code, observe bool) codes.Code {
	return f(peer, href, method, observe)
}

// Config configures a Server. Zero values get the documented defaults.
type Config struct {
	// Logger receives the server's and go-coap's diagnostics. Default: discard.
	Logger *slog.Logger

	// MaxBodySize bounds request payloads; larger ones are answered 4.13.
	// Default and upper limit: ocf.MaxBodySize (the codec's own limit).
	MaxBodySize int

	// MaxObservers bounds Observe registrations over all resources and peers.
	// A registration beyond it is answered like a plain GET (no Observe
	// option), as RFC 7641 allows. Default DefaultMaxObservers.
	MaxObservers int

	// NotifyTimeout bounds one notification, including the wait for the
	// client's ACK; an observer whose notification fails or times out is
	// removed. Default DefaultNotifyTimeout.
	NotifyTimeout time.Duration

	// Multicast joins the OCF discovery groups 224.0.1.187 (udp4) and
	// ff02::158 (udp6) on every multicast-capable interface, for listeners
	// bound to port 5683 only (multicast discovery is defined for that port).
	Multicast bool

	// Device is served as /oic/d; Device.ID is also the di in every link's
	// anchor (ocf://<di>) in /oic/res.
	Device DeviceInfo

	// Platform is served as /oic/p.
	Platform PlatformInfo

	// Authorizer, when not nil, is consulted for every request.
	Authorizer Authorizer
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = MaxBodySize
	}
	if c.MaxObservers == 0 {
		c.MaxObservers = DefaultMaxObservers
	}
	if c.NotifyTimeout == 0 {
		c.NotifyTimeout = DefaultNotifyTimeout
	}
	if c.Device.ICV == "" {
		c.Device.ICV = DefaultICV
	}
	if c.Device.DMV == "" {
		c.Device.DMV = DefaultDMV
	}
	return c
}

// validate reports every problem of a defaulted Config at once.
func (c Config) validate() error {
	var errs []error
	if c.MaxBodySize < 0 || c.MaxBodySize > MaxBodySize {
		errs = append(errs, fmt.Errorf("MaxBodySize %d out of range 1..%d", c.MaxBodySize, MaxBodySize))
	}
	if c.MaxObservers < 0 {
		errs = append(errs, fmt.Errorf("MaxObservers %d is negative", c.MaxObservers))
	}
	if c.NotifyTimeout < 0 {
		errs = append(errs, fmt.Errorf("NotifyTimeout %v is negative", c.NotifyTimeout))
	}
	if err := c.Device.validate(); err != nil {
		errs = append(errs, fmt.Errorf("device: %w", err))
	}
	if err := c.Platform.validate(); err != nil {
		errs = append(errs, fmt.Errorf("platform: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ocf config: %w", err)
	}
	return nil
}
