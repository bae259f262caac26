package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/pstat"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// ResourceType is the rt of the software update resource, by which Open
// finds it in /oic/res.
const ResourceType = swu.ResourceType

// pstat's href is fixed by the OCF Security specification; it is still
// looked up by rt first, like every other resource.
const (
	pstatRT   = pstat.ResourceType
	pstatHref = pstat.Href
)

// Device is one device's software update resource, found through /oic/res
// by its rt, on a connection that is dialled again whenever it breaks: a
// device that restarts into a new version closes its socket for a moment,
// and a go-coap connection that saw that is dead for good. Safe for
// concurrent use. Close it when done.
type Device struct {
	sec *Security // nil: plain CoAP

	// endpoint is as given to Open, normalised to scheme://host:port; with
	// credentials, the device's coaps endpoint once found.
	endpoint string

	mu     sync.Mutex
	conn   *Conn  // nil: dial on next use
	href   string // of the software update resource on conn's device
	closed bool
}

// ErrClosed is returned by the methods of a closed Device.
var ErrClosed = errors.New("device handle closed")

// Open connects to endpoint over plain CoAP and finds its software update
// resource. It fails (wrapping ErrNotFound) when the device offers none.
// Devices that require authentication answer 4.01: use OpenSecure.
func Open(ctx context.Context, endpoint string) (*Device, error) {
	return OpenSecure(ctx, endpoint, nil)
}

// OpenSecure is Open over CoAPs with sec (nil: plain CoAP, like Open). A
// coaps:// endpoint is dialled directly; for a coap:// one (what multicast
// discovery finds) the device's coaps endpoint is looked up in its
// /oic/res, which every device serves in the clear.
func OpenSecure(ctx context.Context, endpoint string, sec *Security) (*Device, error) {
	scheme, addr, err := SplitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if sec == nil && scheme == SchemeCoAPS {
		return nil, fmt.Errorf("endpoint %s: %w", endpoint, sec.validate())
	}
	d := &Device{endpoint: scheme + "://" + addr, sec: sec}
	if _, _, err := d.connection(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Endpoint is the device's endpoint URL in use: coap://, or coaps://.
func (d *Device) Endpoint() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endpoint
}

// Href is the href of the software update resource as last found.
func (d *Device) Href() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.href
}

// Close closes the connection. Calling it again does nothing.
func (d *Device) Close() error {
	d.mu.Lock()
	c := d.conn
	d.conn, d.closed = nil, true
	d.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// connection returns a live connection and the resource's href, dialling
// and looking the resource up again when the last connection broke (the
// new version of the device may serve it at another href).
func (d *Device) connection(ctx context.Context) (*Conn, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, "", ErrClosed
	}
	if d.conn != nil && !d.conn.Broken() {
		return d.conn, d.href, nil
	}
	if d.conn != nil {
		_ = d.conn.Close()
		d.conn = nil
	}
	if d.sec != nil && strings.HasPrefix(d.endpoint, SchemeCoAP+"://") {
		ep, err := findSecure(ctx, d.endpoint)
		if err != nil {
			return nil, "", err
		}
		d.endpoint = ep
	}
	scheme, addr, err := SplitEndpoint(d.endpoint)
	if err != nil {
		return nil, "", err
	}
	c, err := dial(ctx, scheme, addr, d.sec)
	if err != nil {
		return nil, "", err
	}
	href, err := c.FindResource(ctx, ResourceType)
	if err != nil {
		_ = c.Close()
		return nil, "", err
	}
	d.conn, d.href = c, href
	return c, href, nil
}

// findSecure reads /oic/res at a coap:// endpoint and returns the coaps
// endpoint of the software update resource.
func findSecure(ctx context.Context, endpoint string) (string, error) {
	c, err := Dial(ctx, endpoint)
	if err != nil {
		return "", err
	}
	defer c.Close()
	links, err := c.Links(ctx, ResourceType)
	if err != nil {
		return "", err
	}
	_, addr, _ := SplitEndpoint(endpoint)
	host, _, _ := net.SplitHostPort(addr)
	ep, ok := secureEndpoint(links, host)
	if !ok {
		return "", fmt.Errorf("%s: the device lists no coaps endpoint for %s: %w", endpoint, ResourceType, ErrNotFound)
	}
	return ep, nil
}

// drop forgets c after a transport error so that the next call dials
// again. A reply from the device (a *DeviceError) does not count: the
// connection works.
func (d *Device) drop(c *Conn, err error) {
	if err == nil {
		return
	}
	if _, ok := errors.AsType[*DeviceError](err); ok {
		return
	}
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
	_ = c.Close()
}

// call runs f on a live connection. A GET (idempotent) that fails on a
// connection that was already broken is tried once more on a new one.
func (d *Device) call(ctx context.Context, idempotent bool, f func(c *Conn, href string) error) error {
	for attempt := 0; ; attempt++ {
		c, href, err := d.connection(ctx)
		if err != nil {
			return err
		}
		err = f(c, href)
		if err == nil {
			return nil
		}
		broken := c.Broken()
		d.drop(c, err)
		if !idempotent || !broken || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// Info reads /oic/d: identity, name, model and installed version (sv).
func (d *Device) Info(ctx context.Context) (DeviceInfo, error) {
	var info DeviceInfo
	err := d.call(ctx, true, func(c *Conn, _ string) (err error) {
		info, err = c.Device(ctx)
		return err
	})
	return info, err
}

// Status reads the software update resource.
func (d *Device) Status(ctx context.Context) (Status, error) {
	var s Status
	err := d.call(ctx, true, func(c *Conn, href string) (err error) {
		s, err = c.Status(ctx, href)
		return err
	})
	return s, err
}

// Update sends u to the software update resource and returns the
// representation the device answered with. A refusal is a *DeviceError
// with the device's diagnostic (which property, and why).
func (d *Device) Update(ctx context.Context, u Update) (Status, error) {
	var s Status
	err := d.call(ctx, false, func(c *Conn, href string) (err error) {
		s, err = c.Update(ctx, href, u)
		return err
	})
	return s, err
}

// Trigger starts action (isac, isvv or upgrade) at once by writing its bit
// to pstat's tm (256, 64, 128), the trigger the OCF Security specification
// offers. The package URL must be set beforehand (Update with PURL only).
func (d *Device) Trigger(ctx context.Context, action string) error {
	var bit uint64
	switch action {
	case ActionCheck:
		bit = pstat.BitNSA
	case ActionFetch, "isv":
		bit = pstat.BitSVV
	case ActionUpgrade:
		bit = pstat.BitSSV
	default:
		return fmt.Errorf("trigger %q through pstat: want isac, isvv or upgrade", action)
	}
	return d.call(ctx, false, func(c *Conn, _ string) error {
		href, err := c.FindResource(ctx, pstatRT)
		if errors.Is(err, ErrNotFound) {
			href = pstatHref
		} else if err != nil {
			return err
		}
		if _, err := c.Post(ctx, href, map[string]any{pstat.PropTM: bit}); err != nil {
			return fmt.Errorf("trigger %s through %s%s: %w", action, c.Endpoint(), href, err)
		}
		return nil
	})
}

// Observe registers for the software update resource on the current
// connection and calls fn with the first representation and every
// notification. It does not survive the connection: Watch and Wait do.
func (d *Device) Observe(ctx context.Context, fn func(Status, error)) (Observation, error) {
	var obs Observation
	err := d.call(ctx, false, func(c *Conn, href string) (err error) {
		obs, err = c.Observe(ctx, href, func(r Response, err error) {
			if err != nil {
				fn(Status{}, err)
				return
			}
			s, err := DecodeStatus(r.Body)
			fn(s, err)
		})
		return err
	})
	return obs, err
}

// cancelQuietly ends an observation; the device may be gone, so it waits
// only briefly for the deregistration.
func cancelQuietly(o Observation) {
	if o == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = o.Cancel(ctx)
}
