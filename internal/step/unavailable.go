package step

import (
	"context"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Unavailable implements every step for a build or configuration that
// cannot fetch or install packages: each step fails with result 8 and a
// detail saying why. It never pretends an update happened.
type Unavailable struct {
	Reason string // e.g. "this agent has no package source configured"
}

func (u Unavailable) fail() error {
	return &Error{Result: swu.ResultUpdateFailed, Detail: u.Reason}
}

// Check implements Checker.
func (u Unavailable) Check(context.Context, CheckRequest) (Target, bool, error) {
	return Target{}, false, u.fail()
}

// Fetch implements Fetcher.
func (u Unavailable) Fetch(context.Context, CheckRequest, Target, ProgressFunc) (Staged, error) {
	return Staged{}, u.fail()
}

// Discard implements Fetcher; there is never anything to discard.
func (u Unavailable) Discard() error { return nil }

// Install implements Installer.
func (u Unavailable) Install(context.Context, string, Target, ProgressFunc) error { return u.fail() }

// Confirm implements Installer: nothing can have been installed, so an
// upgrade found on disk at start-up is reported as failed.
func (u Unavailable) Confirm(context.Context, Target) error { return u.fail() }
