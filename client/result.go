package client

import (
	"fmt"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Values of swupdateaction and swupdatestate, as on the wire.
const (
	ActionIdle    = string(swu.ActionIdle)
	ActionCheck   = string(swu.ActionCheck)   // isac
	ActionFetch   = string(swu.ActionFetch)   // isvv
	ActionUpgrade = string(swu.ActionUpgrade) // upgrade

	StateIdle      = string(swu.StateIdle)
	StateNSA       = string(swu.StateNSA)
	StateSVV       = string(swu.StateSVV)
	StateSVA       = string(swu.StateSVA)
	StateUpgrading = string(swu.StateUpgrading)
)

// Values of swupdateresult (the spec's Table 5); 400–599 carry the package
// source's status.
const (
	ResultIdle    = int(swu.ResultIdle)
	ResultSuccess = int(swu.ResultSuccess)
)

// ResultText names a swupdateresult for people.
func ResultText(r int) string {
	switch swu.Result(r) {
	case swu.ResultIdle:
		return "idle"
	case swu.ResultSuccess:
		return "success"
	case swu.ResultNoRAM:
		return "not enough RAM"
	case swu.ResultNoFlash:
		return "not enough flash"
	case swu.ResultConnectionLost:
		return "connection lost"
	case swu.ResultValidation:
		return "validation failure"
	case swu.ResultInvalidURL:
		return "invalid URL"
	case swu.ResultUnsupportedProt:
		return "unsupported protocol"
	case swu.ResultUpdateFailed:
		return "update failed"
	}
	if r >= 400 && r <= 599 {
		return fmt.Sprintf("package source answered %d", r)
	}
	return fmt.Sprintf("result %d", r)
}

// Finished reports whether no action is pending or running: the last one
// has ended and Result is its outcome. A scheduled action counts as
// pending, so an update scheduled for later is not finished.
func (s Status) Finished() bool {
	return s.Action == ActionIdle && s.State != StateSVV && s.State != StateUpgrading
}

// Failed reports whether the last action ended with a failure result.
func (s Status) Failed() bool { return s.Result > ResultSuccess }

// Percent is the progress of a download or install, 0–100, or -1 when none
// is reported.
func (s Status) Percent() int {
	if s.Progress == nil || s.Progress.Total <= 0 {
		return -1
	}
	p := s.Progress.Done * 100 / s.Progress.Total
	return int(min(max(p, 0), 100))
}
