// Package steptest has helpers for tests of the check, fetch and install
// steps, which report their outcome as a *step.Error.
package steptest

import (
	"errors"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// ResultOf returns the swupdateresult of err: 1 (success) for nil, the
// *step.Error's result, or -1 for any other error, which no step may
// return.
func ResultOf(err error) swu.Result {
	if err == nil {
		return swu.ResultSuccess
	}
	var se *step.Error
	if errors.As(err, &se) {
		return se.Result
	}
	return -1
}
