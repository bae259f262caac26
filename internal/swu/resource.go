package swu

import (
	"context"
	"errors"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// Controller owns the update state; the agent implements it.
type Controller interface {
	// Snapshot returns the current properties.
	Snapshot() Properties
	// Apply carries out a validated UPDATE atomically: all of it or, on
	// error, none of it. It returns an *Error when the request is impossible
	// in the current state (for example "an update is in progress"); any
	// other error is a fault of the device.
	Apply(ctx context.Context, u Update) error
}

// ResourceOptions configures a Resource.
type ResourceOptions struct {
	Parse ParseOptions
	// Now is the clock updatetime is checked against; nil means time.Now.
	// Tests inject a fixed clock.
	Now func() time.Time
}

// Resource serves oic.r.softwareupdate; it implements ocf.Resource. It is
// safe for concurrent use as long as the Controller is.
type Resource struct {
	href string
	c    Controller
	opts ResourceOptions
}

var _ ocf.Resource = (*Resource)(nil)

// NewResource returns the resource at href (DefaultHref when empty) backed by c.
func NewResource(href string, c Controller, opts ResourceOptions) *Resource {
	if href == "" {
		href = DefaultHref
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Resource{href: href, c: c, opts: opts}
}

func (r *Resource) Href() string         { return r.href }
func (r *Resource) Types() []string      { return []string{ResourceType} }
func (r *Resource) Interfaces() []string { return []string{IfRW, IfBaseline} }
func (r *Resource) Observable() bool     { return true }

// Serve answers GET with the representation and POST with ParseUpdate and
// Controller.Apply. Observers are notified by the agent (Server.Notify) when
// the state changes, not here: a change can come from the scheduler or a
// running step as well as from an UPDATE.
func (r *Resource) Serve(ctx context.Context, req *ocf.Request) ocf.Response {
	switch req.Method {
	case codes.GET:
		return ocf.Response{Code: codes.Content, Body: Represent(r.c.Snapshot(), req.Interface)}
	case codes.POST:
		return r.update(ctx, req)
	default:
		return ocf.ErrorResponse(codes.MethodNotAllowed, "",
			"method "+req.Method.String()+" is not allowed on the software update resource; use GET or POST")
	}
}

func (r *Resource) update(ctx context.Context, req *ocf.Request) ocf.Response {
	u, err := ParseUpdate(req.Body, r.opts.Now(), r.opts.Parse)
	if err == nil {
		err = r.c.Apply(ctx, u)
	}
	var se *Error
	switch {
	case err == nil:
		return ocf.Response{Code: codes.Changed, Body: Represent(r.c.Snapshot(), req.Interface)}
	case errors.As(err, &se):
		return ocf.ErrorResponse(codes.BadRequest, se.Property, se.Message)
	case ctx.Err() != nil:
		// The server is shutting down or the client went away: not a
		// device fault, and Apply's contract says nothing was applied.
		return ocf.ErrorResponse(codes.ServiceUnavailable, "", "the device is shutting down; try again")
	default:
		return ocf.ErrorResponse(codes.InternalServerError, "", "the device could not apply the update: "+err.Error())
	}
}
