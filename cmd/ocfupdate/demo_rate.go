package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/time/rate"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// On loopback a rollout of the demo takes a fraction of a second, too fast
// to see anything of it. So on a terminal the demo's package server sends
// at most defaultDemoRate bytes a second, shared by every download, as a
// modest uplink would: with defaultDemoPackage packages, five devices take
// about seven seconds (a canary alone, then two waves of two sharing the
// bandwidth), long enough to watch the devices download, wave by wave.
const (
	defaultDemoRate    = 3 << 20
	defaultDemoPackage = 4 << 20
)

// minRate is the lowest limit --rate takes. Slower, a response would
// trickle out a few bytes a write, and a package of the default size would
// outlast the rollout's 30 minutes a device.
const minRate = 1 << 10

// rateAuto is --rate's value when it was not given: defaultDemoRate on a
// terminal, unlimited otherwise (CI wants speed, not a show).
const rateAuto = -1

// parseRate parses a bandwidth: a byte count in parseSize's syntax with an
// optional "/s" ("2MiB/s", "512KiB/s", "3145728"), at least minRate, or 0
// for unlimited.
func parseRate(s string) (int64, error) {
	n, err := parseSize(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil {
		return 0, fmt.Errorf("bad rate %q: want bytes a second, or a whole number with KiB, MiB or GiB, e.g. 2MiB/s or 512KiB/s; 0 for unlimited", s)
	}
	if n != 0 && n < minRate {
		return 0, fmt.Errorf("rate %q: want at least %s/s, or 0 for unlimited", s, formatSize(minRate))
	}
	return n, nil
}

// formatRate writes a rate parseRate reads back; rateAuto is "auto".
func formatRate(bps int64) string {
	switch {
	case bps == rateAuto:
		return "auto"
	case bps <= 0:
		return "0"
	}
	return formatSize(bps) + "/s"
}

// humanSize writes n for people: "4 MiB", "1.5 MiB", "512 KiB", "100 B".
func humanSize(n int64) string {
	for _, u := range sizeUnits[:len(sizeUnits)-1] { // all but B
		if n >= u.bytes {
			v := strconv.FormatFloat(float64(n)/float64(u.bytes), 'f', 1, 64)
			return strings.TrimSuffix(v, ".0") + " " + u.name
		}
	}
	return fmt.Sprintf("%d B", n)
}

// rateFlag is --rate: parseRate's syntax, or "auto".
type rateFlag struct{ bps *int64 }

func (f rateFlag) Type() string { return "rate" }

func (f rateFlag) String() string {
	if f.bps == nil {
		return ""
	}
	return formatRate(*f.bps)
}

func (f rateFlag) Set(s string) error {
	if strings.TrimSpace(s) == "auto" {
		*f.bps = rateAuto
		return nil
	}
	n, err := parseRate(s)
	if err != nil {
		return err
	}
	*f.bps = n
	return nil
}

// newByteLimiter returns a limiter of bps bytes a second. Its burst, the
// most a single write may send at once, is an eighth of a second's worth
// (at most 32 KiB): small enough that bytes flow smoothly, and so progress
// bars move steadily, rather than in second-long lurches.
func newByteLimiter(bps int64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bps), int(max(1, min(bps/8, 32<<10))))
}

// throttle returns h with the bodies of all its responses together limited
// to lim's rate: concurrent downloads share the bandwidth. A nil lim
// returns h as it is.
func throttle(h http.Handler, lim *rate.Limiter) http.Handler {
	if lim == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&throttledWriter{ResponseWriter: w, lim: lim, wait: func(n int) error {
			return lim.WaitN(r.Context(), n)
		}}, r)
	})
}

// throttledWriter sends a response body no faster than lim allows. It
// hides the ResponseWriter's io.ReaderFrom on purpose, so that every byte
// of a file passes through Write (and so through the limiter); Unwrap
// still gives http.ResponseController the real writer.
type throttledWriter struct {
	http.ResponseWriter
	lim  *rate.Limiter
	wait func(n int) error // lim.WaitN with the request's context
}

func (w *throttledWriter) Write(p []byte) (int, error) {
	sent := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), w.lim.Burst())]
		if err := w.wait(len(chunk)); err != nil {
			return sent, fmt.Errorf("throttled write: %w", err)
		}
		n, err := w.ResponseWriter.Write(chunk)
		sent += n
		if err != nil {
			return sent, err
		}
		p = p[len(chunk):]
	}
	return sent, nil
}

func (w *throttledWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveRepo serves the repository in dir over HTTPS on ln until ctx is
// done, and closes ln: "repo serve"'s server, with the bodies of its
// responses limited to bps bytes a second in all (0: unlimited). Requests
// in flight are cancelled with ctx, which also ends their waits for the
// limiter.
func serveRepo(ctx context.Context, ln net.Listener, dir string, tlsConfig *tls.Config, bps int64, logger *slog.Logger) error {
	opts := tufrepo.ServeOptions{Errors: func(err error) { logger.Warn("repository server", "err", err) }}
	if bps > 0 {
		lim := newByteLimiter(bps)
		opts.Middleware = func(h http.Handler) http.Handler { return throttle(h, lim) }
	}
	return tufrepo.ServeHTTPS(ctx, ln, dir, tlsConfig, opts)
}
