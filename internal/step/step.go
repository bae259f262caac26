// Package step is the vocabulary shared by the agent and the update steps it
// runs (check, fetch, install): requests, targets, progress and the error
// type that carries a swupdateresult. The agent consumes these interfaces;
// internal/fetch, internal/tufrepo and internal/install implement them.
package step

import (
	"context"
	"errors"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// The three steps of an update (Table 4) sit behind these interfaces. The
// agent calls them from its worker goroutine and feeds their outcome back to
// the state machine as events. A step reports failure with an *Error that
// names the swupdateresult; any other error maps to result 8.

// CheckRequest is what a check needs to know about the device.
type CheckRequest struct {
	PURL             string // resolved package URL (base URL of the TUF repository)
	Model            string // dmno
	InstalledVersion string // sv
	InstalledCounter int64  // counter of the installed package (0: none installed by us)
}

// Target names a package found by a check.
type Target struct {
	Version string // version string shown as nv
	Name    string // target path / name in the repository
	Length  int64  // bytes, from signed metadata
	Counter int64  // the repository's monotonically increasing counter for the model
	// MinRAM is the memory in bytes the package says the new version needs
	// to install and run (signed min_ram); zero: no requirement. A fetcher
	// refuses the package with result 2 when the device has less available.
	MinRAM uint64
}

// Checker looks for a newer package for this device (isac).
type Checker interface {
	// Check returns the newest target newer than the installed version, or
	// found=false when there is none.
	Check(ctx context.Context, req CheckRequest) (t Target, found bool, err error)
}

// ProgressFunc reports bytes done of total during a download or install.
type ProgressFunc func(done, total int64)

// Staged is a downloaded and verified package.
type Staged struct {
	Target Target
	Path   string // the verified file; never the name of a partial download
}

// Fetcher downloads and verifies a package (isvv). It must stream to disk,
// resume a partial download left by an earlier run, and return the path of a
// verified package only after verification. When want is zero (isvv without
// a check before it) it fetches the newest target a check would find.
type Fetcher interface {
	Fetch(ctx context.Context, req CheckRequest, want Target, progress ProgressFunc) (Staged, error)
	// Discard removes any staged or partial download.
	Discard() error
}

// Installer installs a verified package (upgrade) and confirms it after a restart.
type Installer interface {
	// Install installs the verified package at path. It may end the process
	// (re-exec into the new version); Confirm then runs at the next start.
	Install(ctx context.Context, path string, t Target, progress ProgressFunc) error
	// Confirm is called at start-up when the persisted state is upgrading:
	// it checks the new version is healthy (nil) or rolls back (error).
	Confirm(ctx context.Context, t Target) error
}

// ErrNothingNewer is wrapped by a Fetch asked for the newest package (isvv
// without a check first) when there is nothing newer than the installed
// version: not a failure, the update simply ends (result 0).
var ErrNothingNewer = errors.New("no newer package")

// Error is a step failure with the swupdateresult it maps to.
type Error struct {
	Result swu.Result
	Detail string // one human sentence for x.org.ocfupdate.detail
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }
