package tufclient

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// mapError turns an error of go-tuf's updater into the step's outcome. A
// *step.Error from the Downloader (which go-tuf passes through wrapped) is
// the most precise and wins; TUF verification failures are result 5 with a
// sentence naming the role; anything else is result 8. up may be nil.
func (c *Client) mapError(ctx context.Context, op string, err error, up *updater.Updater, rec *recorder) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Cancellation is not a failure: the agent decides what follows.
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	var se *step.Error
	if errors.As(err, &se) {
		return se
	}
	err = fmt.Errorf("%s: %w", op, err)
	what := "TUF metadata"
	if r := rec.lastRole(); r != "" {
		what = "TUF " + r + " metadata"
	}
	var he *metadata.ErrDownloadHTTP
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &he):
		// Only a fetcher other than ours returns these bare.
		res := fetch.ResultForHTTPStatus(he.StatusCode)
		if res == swu.ResultSuccess {
			res = swu.ResultUpdateFailed
		}
		return &step.Error{Result: res, Detail: fmt.Sprintf("The repository answered status %d", he.StatusCode), Err: err}
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return validation(c.expiredDetail(up, rec), err)
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		return validation(fmt.Sprintf("The %s is not signed by enough trusted keys (signature threshold not met)", what), err)
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		return validation(fmt.Sprintf("The %s has an older or unexpected version (rollback attempt or inconsistent repository)", what), err)
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		return validation(fmt.Sprintf("The %s does not match the length or hash signed for it", what), err)
	case errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		return validation(fmt.Sprintf("The %s is longer than allowed", what), err)
	case errors.Is(err, &metadata.ErrRepository{}):
		return validation(fmt.Sprintf("The %s failed verification", what), err)
	case errors.Is(err, &metadata.ErrValue{}), errors.Is(err, &metadata.ErrType{}),
		errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return validation(fmt.Sprintf("The %s is malformed", what), err)
	case errors.Is(err, syscall.ENOSPC):
		return &step.Error{Result: swu.ResultNoFlash, Detail: "Not enough free storage for the TUF metadata cache", Err: err}
	default:
		return &step.Error{Result: swu.ResultUpdateFailed, Detail: "Checking the TUF repository failed", Err: err}
	}
}

func validation(detail string, err error) *step.Error {
	return &step.Error{Result: swu.ResultValidation, Detail: detail, Err: err}
}

// expiredDetail names the expired role and when it expired. go-tuf keeps
// an expired root, timestamp or snapshot in its trusted set (for rollback
// checks) but rejects expired targets before storing them; their date is
// read from the bytes just downloaded.
func (c *Client) expiredDetail(up *updater.Updater, rec *recorder) string {
	role, exp := "", time.Time{}
	if up != nil {
		ts := up.GetTrustedMetadataSet()
		switch {
		case ts.Root != nil && ts.Root.Signed.IsExpired(ts.RefTime):
			role, exp = metadata.ROOT, ts.Root.Signed.Expires
		case ts.Timestamp != nil && ts.Timestamp.Signed.IsExpired(ts.RefTime):
			role, exp = metadata.TIMESTAMP, ts.Timestamp.Signed.Expires
		case ts.Snapshot != nil && ts.Snapshot.Signed.IsExpired(ts.RefTime):
			role, exp = metadata.SNAPSHOT, ts.Snapshot.Signed.Expires
		}
	}
	if role == "" {
		var m struct {
			Signed struct {
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		if json.Unmarshal(rec.lastData, &m) == nil && !m.Signed.Expires.IsZero() {
			role, exp = rec.lastRole(), m.Signed.Expires
		}
	}
	if role == "" {
		return "The repository's TUF metadata has expired (a stale or frozen repository)"
	}
	return fmt.Sprintf("The repository's TUF %s metadata expired on %s (a stale or frozen repository)",
		role, exp.UTC().Format(time.RFC3339))
}

// diskError maps a local file error: a full disk is result 3, anything else 8.
func diskError(op string, err error) *step.Error {
	if errors.Is(err, syscall.ENOSPC) {
		return &step.Error{Result: swu.ResultNoFlash, Detail: "Not enough free storage to " + op, Err: err}
	}
	return &step.Error{Result: swu.ResultUpdateFailed, Detail: "Cannot " + op, Err: err}
}

// Staged packages are named by their digest, so a file name never stands
// for two different packages and a resumed .part always continues the same
// bytes.
const stagedSuffix = ".pkg"

func stagedPath(dir string, digest []byte) string {
	return filepath.Join(dir, hex.EncodeToString(digest)+stagedSuffix)
}

// removeStaged deletes staged packages and partial downloads in the staging
// directory, except keep and its partial (keep "" deletes all). Other files
// are left alone: the directory may be shared.
func (c *Client) removeStaged(keep string) error {
	entries, err := os.ReadDir(c.cfg.StagingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("discard staged packages: %w", err)
	}
	keepName := filepath.Base(keep)
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, stagedSuffix) && !strings.HasSuffix(name, stagedSuffix+fetch.PartSuffix) {
			continue
		}
		if keep != "" && (name == keepName || name == keepName+fetch.PartSuffix) {
			continue
		}
		if err := os.Remove(filepath.Join(c.cfg.StagingDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		} else {
			c.log.Info("removed staged download", "file", name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("discard staged packages: %w", err)
	}
	return nil
}
