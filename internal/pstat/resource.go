package pstat

import (
	"context"
	"errors"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Controller owns the state behind pstat; the agent implements it.
type Controller interface {
	// Snapshot returns the current properties, cm already derived from the
	// update state (CMForState).
	Snapshot() Properties
	// Trigger starts action a at once (never ActionIdle). It returns an
	// *swu.Error when a is impossible in the current state; any other error
	// is a fault of the device.
	Trigger(ctx context.Context, a swu.Action) error
}

// Resource serves /oic/sec/pstat; it implements ocf.Resource.
type Resource struct {
	c Controller
}

var _ ocf.Resource = (*Resource)(nil)

// NewResource returns the pstat resource backed by c.
func NewResource(c Controller) *Resource {
	return &Resource{c: c}
}

func (r *Resource) Href() string         { return Href }
func (r *Resource) Types() []string      { return []string{ResourceType} }
func (r *Resource) Interfaces() []string { return []string{IfBaseline} }
func (r *Resource) Observable() bool     { return true }

// Serve answers GET with the representation and POST by triggering the
// action tm asks for. Observers are notified by the agent when cm or tm
// changes, whatever changed them.
func (r *Resource) Serve(ctx context.Context, req *ocf.Request) ocf.Response {
	switch req.Method {
	case codes.GET:
		return ocf.Response{Code: codes.Content, Body: Represent(r.c.Snapshot())}
	case codes.POST:
		return r.update(ctx, req)
	default:
		return ocf.ErrorResponse(codes.MethodNotAllowed, "",
			"method "+req.Method.String()+" is not allowed on pstat; use GET or POST")
	}
}

func (r *Resource) update(ctx context.Context, req *ocf.Request) ocf.Response {
	tm, err := ParseUpdate(req.Body)
	var a swu.Action
	if err == nil {
		a, err = ActionForTM(tm)
	}
	if err == nil && a != swu.ActionIdle {
		err = r.c.Trigger(ctx, a)
	}
	var se *swu.Error
	switch {
	case err == nil:
		return ocf.Response{Code: codes.Changed, Body: Represent(r.c.Snapshot())}
	case errors.As(err, &se):
		return ocf.ErrorResponse(codes.BadRequest, se.Property, se.Message)
	case ctx.Err() != nil:
		return ocf.ErrorResponse(codes.ServiceUnavailable, "", "the device is shutting down; try again")
	default:
		return ocf.ErrorResponse(codes.InternalServerError, "", "the device could not start "+string(a)+": "+err.Error())
	}
}
