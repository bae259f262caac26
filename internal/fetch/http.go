package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// maxRedirects bounds how many redirects one request follows.
const maxRedirects = 5

// checkRedirect applies the scheme policy to every redirect, so that an
// https source cannot hand the device to an http one.
func (d *Downloader) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return failure(swu.ResultUnsupportedProt, "The package server redirected too many times",
			fmt.Errorf("stopped after %d redirects", len(via)))
	}
	if req.URL.Scheme != SchemeHTTPS && !(d.cfg.AllowInsecure && req.URL.Scheme == SchemeHTTP) {
		return failure(swu.ResultUnsupportedProt,
			fmt.Sprintf("The package server redirected to an unsupported %s URL", req.URL.Scheme),
			fmt.Errorf("redirect to %s", req.URL.Redacted()))
	}
	return nil
}

// httpAttempt performs one GET from s.Offset() on and streams the body
// into s. It returns nil when the body ended cleanly, a *step.Error, or an
// error once ctx is done. buf is the read buffer.
func (d *Downloader) httpAttempt(ctx context.Context, u *url.URL, s sink, buf []byte) error {
	// The watchdog cancels the attempt when the server is silent for
	// Timeout: while connecting, before the headers, or between reads.
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(d.cfg.Timeout, func() { cancel(ErrStalled) })
	defer watchdog.Stop()

	host := u.Host
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(context.Cause(actx), ErrStalled) {
			err = fmt.Errorf("%w after %v: %w", ErrStalled, d.cfg.Timeout, err)
		}
		return networkFailure(err, host)
	}

	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return failure(swu.ResultInvalidURL, "The package URL is malformed", err)
	}
	// identity: a transparently decompressed body would not match Range
	// offsets nor the lengths in the metadata.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	offset := s.Offset()
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	watchdog.Reset(d.cfg.Timeout)

	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			// The server ignored Range: the body starts at byte 0.
			d.cfg.Logger.Info("server ignored Range; restarting from 0", "url", redact(u), "offset", offset)
			if err := s.Reset(); err != nil {
				return err
			}
		}
		if resp.ContentLength >= 0 {
			if err := s.Announce(resp.ContentLength); err != nil {
				return err
			}
		}
	case http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != offset {
			// Not the bytes we asked for: start over without Range.
			if rerr := s.Reset(); rerr != nil {
				return rerr
			}
			return failure(swu.ResultConnectionLost, "The package server sent a wrong range",
				fmt.Errorf("asked for bytes %d-, got Content-Range %q (%v)", offset, resp.Header.Get("Content-Range"), err))
		}
		if total >= 0 {
			if err := s.Announce(total); err != nil {
				return err
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// Only sent when we already hold more bytes than the server has.
		return failure(swu.ResultValidation,
			fmt.Sprintf("The package on the server is shorter than the %d bytes already downloaded", offset),
			fmt.Errorf("%w: 416 for bytes %d-", ErrLengthMismatch, offset))
	default:
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return failure(swu.ResultUnsupportedProt,
				fmt.Sprintf("The package server answered HTTP %d, which a download cannot use", resp.StatusCode),
				fmt.Errorf("GET %s: status %d", redact(u), resp.StatusCode))
		}
		return statusFailure(resp.StatusCode, redact(u))
	}

	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(d.cfg.Timeout)
			if _, err := s.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
}

// parseContentRange parses "bytes first-last/total" ("*" total: -1).
func parseContentRange(v string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: not bytes", v)
	}
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no total", v)
	}
	first, last, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no span", v)
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("content-range %q: bad span", v)
	}
	total = -1
	if size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil || total <= end {
			return 0, 0, fmt.Errorf("content-range %q: bad total", v)
		}
	}
	return start, total, nil
}
