package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"

	"github.com/ocfupdate/ocfupdate/internal/step"
)

// TUFFetcher returns go-tuf's metadata fetcher over this Downloader, for
// https and coaps (and http/coap when allowed) URLs. go-tuf's interface has
// no context, so the one given here bounds every download it makes: create
// one per update run and do not use it after ctx is done.
func (d *Downloader) TUFFetcher(ctx context.Context) fetcher.Fetcher {
	return &tufFetcher{d: d, ctx: ctx}
}

type tufFetcher struct {
	d   *Downloader
	ctx context.Context //nolint:containedctx // go-tuf's Fetcher takes none
}

// DownloadFile fetches urlPath, at most maxLength bytes. The timeout
// argument is deprecated in go-tuf and ignored: Config.Timeout applies.
// Errors are *step.Error wrapping the error go-tuf's updater looks for: a
// *metadata.ErrDownloadHTTP for statuses (4.04 over CoAP is 404, which ends
// the search for a newer root) and a *metadata.ErrDownloadLengthMismatch
// for a body longer than maxLength.
func (f *tufFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	data, err := f.d.Get(f.ctx, urlPath, maxLength)
	if err == nil {
		return data, nil
	}
	var se *step.Error
	if !errors.As(err, &se) {
		return nil, err
	}
	var tufErr error
	switch {
	case isStatusResult(se.Result):
		tufErr = &metadata.ErrDownloadHTTP{StatusCode: int(se.Result), URL: urlPath}
	case errors.Is(se, ErrTooLong), errors.Is(se, ErrLengthMismatch):
		tufErr = &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("download failed for %s: %v", urlPath, se.Err)}
	default:
		return nil, se
	}
	return nil, failure(se.Result, se.Detail, fmt.Errorf("%w: %w", tufErr, se.Err))
}
