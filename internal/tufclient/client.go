package tufclient

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
	"github.com/ocfupdate/ocfupdate/internal/sysmem"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// Config configures a Client.
type Config struct {
	// TrustedRoot is the root.json the device trusts initially (from
	// --trust, or embedded at build time). Required.
	TrustedRoot []byte
	// CacheDir holds verified metadata, one subdirectory per repository
	// (e.g. DATA/tuf). Created if missing. Required.
	CacheDir string
	// StagingDir receives downloaded packages (e.g. DATA/downloads). Only
	// files named *.pkg and *.pkg.part in it are touched. Created if
	// missing. Required.
	StagingDir string
	// Downloader fetches metadata and packages. Required.
	Downloader *fetch.Downloader
	// Logger receives check and fetch messages (nil: discarded).
	Logger *slog.Logger
	// Now is the reference time for metadata expiry (nil: time.Now).
	Now func() time.Time
	// MemAvailable reports the memory available to a new program, checked
	// against a package's signed min_ram before it is downloaded (nil:
	// sysmem.Available, MemAvailable of /proc/meminfo). An error means
	// unknown: logged, and the download goes ahead.
	MemAvailable sysmem.AvailableFunc
}

func (c *Config) validate() error {
	var errs []error
	if len(c.TrustedRoot) == 0 {
		errs = append(errs, errors.New("no trusted root"))
	} else if _, err := trustedmetadata.New(c.TrustedRoot); err != nil {
		// trustedmetadata.New parses the root and checks it is signed by
		// its own keys: the same test go-tuf's updater applies.
		errs = append(errs, fmt.Errorf("trusted root: %w", err))
	}
	if c.CacheDir == "" {
		errs = append(errs, errors.New("no metadata cache directory"))
	}
	if c.StagingDir == "" {
		errs = append(errs, errors.New("no staging directory"))
	}
	if c.Downloader == nil {
		errs = append(errs, errors.New("no downloader"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tufclient config: %w", err)
	}
	return nil
}

// Client checks for and fetches packages from TUF repositories. It
// implements step.Checker and step.Fetcher. Calls are serialised: they
// share the metadata cache and the staging directory.
type Client struct {
	cfg    Config
	log    *slog.Logger
	rootID [sha256.Size]byte // names the cache together with the purl
	sem    chan struct{}     // one call at a time
}

var (
	_ step.Checker = (*Client)(nil)
	_ step.Fetcher = (*Client)(nil)
)

// New returns a Client for cfg and creates its directories.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MemAvailable == nil {
		cfg.MemAvailable = sysmem.Available
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, dir := range []string{cfg.CacheDir, cfg.StagingDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tufclient: %w", err)
		}
	}
	return &Client{
		cfg:    cfg,
		log:    log,
		rootID: sha256.Sum256(cfg.TrustedRoot),
		sem:    make(chan struct{}, 1),
	}, nil
}

// lock waits for the other call to finish, or for ctx.
func (c *Client) lock(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) unlock() { <-c.sem }

// Check refreshes the repository's metadata and returns the newest package
// for req.Model above the installed counter, or found=false.
func (c *Client) Check(ctx context.Context, req step.CheckRequest) (step.Target, bool, error) {
	if err := c.lock(ctx); err != nil {
		return step.Target{}, false, err
	}
	defer c.unlock()

	base, err := repoURL(req.PURL)
	if err != nil {
		return step.Target{}, false, err
	}
	targets, err := c.refresh(ctx, base)
	if err != nil {
		return step.Target{}, false, err
	}
	sel, found, err := selectTarget(targets, req)
	if err != nil || !found {
		if err == nil {
			c.log.Info("no newer package", "purl", redact(base), "model", req.Model,
				"installed_version", req.InstalledVersion, "installed_counter", req.InstalledCounter)
		}
		return step.Target{}, false, err
	}
	t := targetOf(sel)
	c.log.Info("newer package found", "purl", redact(base), "target", t.Name, "version", t.Version,
		"counter", t.Counter, "length", t.Length, "min_ram", t.MinRAM)
	return t, true, nil
}

// Fetch refreshes the metadata, finds want (or, when want is zero, the
// package Check would find) in it and downloads the package to
// StagingDir/HASH.pkg, verified against the freshly verified length and
// hashes. An already verified file is reused and a partial one resumed.
func (c *Client) Fetch(ctx context.Context, req step.CheckRequest, want step.Target, progress step.ProgressFunc) (step.Staged, error) {
	if err := c.lock(ctx); err != nil {
		return step.Staged{}, err
	}
	defer c.unlock()

	base, err := repoURL(req.PURL)
	if err != nil {
		return step.Staged{}, err
	}
	// Hashes come from metadata verified now, never from what a check saw
	// earlier: the repository may have rotated keys or withdrawn a package.
	targets, err := c.refresh(ctx, base)
	if err != nil {
		return step.Staged{}, err
	}
	var sel tufrepo.Selection
	if want.Name == "" {
		var found bool
		sel, found, err = selectTarget(targets, req)
		if err != nil {
			return step.Staged{}, err
		}
		if !found {
			return step.Staged{}, &step.Error{Result: swu.ResultIdle,
				Detail: fmt.Sprintf("No version newer than %s is available for model %s", req.InstalledVersion, req.Model),
				Err:    ErrNoUpdate}
		}
	} else if sel, err = namedTarget(targets, req, want.Name); err != nil {
		return step.Staged{}, err
	}

	digest, alg := packageDigest(sel.File)
	if digest == nil || sel.File.Length < 0 {
		return step.Staged{}, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("The signed metadata of package %s has no sha256 or sha512 hash or a negative length", sel.Path),
			Err:    ErrMetadata}
	}
	t := targetOf(sel)
	// The RAM check belongs here, not in the step wiring around Fetch:
	// only here is the requirement read from metadata verified for this
	// very fetch (want may be a stale check's, or zero for isvv without a
	// check), and not a byte has been downloaded, nor an older staged
	// package removed, yet. It comes before the Downloader's free space
	// check (result 3), which needs the destination, for the same reason.
	if err := c.checkRAM(t); err != nil {
		return step.Staged{}, err
	}
	if err := os.MkdirAll(c.cfg.StagingDir, 0o700); err != nil {
		return step.Staged{}, diskError("create the download directory", err)
	}
	dst := stagedPath(c.cfg.StagingDir, digest)
	// One package is staged at a time: an older one only takes space.
	if err := c.removeStaged(dst); err != nil {
		c.log.Warn("cannot remove an older staged package", "err", err)
	}
	src := base.JoinPath(tufrepo.RemoteTargetPath(sel.Path, digest)).String()
	expect := fetch.Expect{Length: sel.File.Length, Hashes: map[string][]byte{}}
	for a, h := range sel.File.Hashes {
		expect.Hashes[a] = h
	}
	c.log.Info("fetching package", "target", t.Name, "version", t.Version, "length", t.Length, "hash", alg)
	if err := c.cfg.Downloader.Download(ctx, src, dst, expect, progress); err != nil {
		return step.Staged{}, err
	}
	return step.Staged{Target: t, Path: dst}, nil
}

// Discard removes every staged package and partial download. It waits for
// a Check or Fetch in progress to return, so cancel that first.
func (c *Client) Discard() error {
	c.sem <- struct{}{}
	defer c.unlock()
	return c.removeStaged("")
}

// repoURL checks the purl and returns it without a trailing slash. It must
// be a plain base URL: go-tuf appends file names to it as strings, which a
// query or fragment would break.
func repoURL(purl string) (*url.URL, error) {
	if purl == "" {
		return nil, &step.Error{Result: swu.ResultInvalidURL, Detail: "No package URL is configured"}
	}
	// Insecure schemes pass here; the Downloader enforces its own policy
	// (result 7) on the first request.
	u, err := fetch.ParseURL(purl, true)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, &step.Error{Result: swu.ResultInvalidURL,
			Detail: "The package URL must be the base URL of a TUF repository, without a query or fragment",
			Err:    fmt.Errorf("purl %q", u.Redacted())}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func redact(u *url.URL) string { return u.Redacted() }

// selectTarget applies tufrepo's selection rule to verified targets.
func selectTarget(targets *metadata.Metadata[metadata.TargetsType], req step.CheckRequest) (tufrepo.Selection, bool, error) {
	sel, found, err := tufrepo.SelectTarget(targets, req.Model, tufrepo.Installed{
		Counter: req.InstalledCounter, Version: req.InstalledVersion,
	})
	if errors.Is(err, tufrepo.ErrRequirement) {
		// Like any other signed metadata the device cannot use: refused,
		// never an older package instead.
		return tufrepo.Selection{}, false, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("The newest package for model %s has a malformed min_ram in its signed metadata", req.Model),
			Err:    errors.Join(ErrMetadata, err)}
	}
	if err != nil {
		return tufrepo.Selection{}, false, &step.Error{Result: swu.ResultUpdateFailed,
			Detail: "Cannot select a package (is the device model configured?)", Err: err}
	}
	return sel, found, nil
}

// namedTarget finds the target a check chose in metadata verified now. It
// must still be there, be for this device's model and still be newer than
// what is installed: anything else means the repository changed its mind or
// is lying, and the device installs nothing.
func namedTarget(targets *metadata.Metadata[metadata.TargetsType], req step.CheckRequest, name string) (tufrepo.Selection, error) {
	tf, ok := targets.Signed.Targets[name]
	if !ok {
		return tufrepo.Selection{}, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("Package %s is no longer in the repository's signed metadata", name),
			Err:    ErrWithdrawn}
	}
	cu, err := tufrepo.ParseCustom(tf)
	if errors.Is(err, tufrepo.ErrRequirement) && cu.Model == req.Model {
		return tufrepo.Selection{}, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("Package %s has a malformed min_ram in its signed metadata", name),
			Err:    errors.Join(ErrMetadata, err)}
	}
	if err != nil || cu.Model != req.Model {
		return tufrepo.Selection{}, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("Package %s is not signed as a package for model %s", name, req.Model),
			Err:    errors.Join(ErrWrongModel, err)}
	}
	floor := req.InstalledCounter
	if floor == 0 && req.InstalledVersion != "" {
		floor, _ = tufrepo.InstalledCounter(targets, req.Model, req.InstalledVersion)
	}
	if cu.Counter <= floor {
		return tufrepo.Selection{}, &step.Error{Result: swu.ResultValidation,
			Detail: fmt.Sprintf("Package %s (counter %d) is not newer than the installed software (counter %d)", name, cu.Counter, floor),
			Err:    ErrNotNewer}
	}
	return tufrepo.Selection{Path: name, File: tf, Custom: cu}, nil
}

func targetOf(sel tufrepo.Selection) step.Target {
	return step.Target{
		Version: sel.Custom.Version,
		Name:    sel.Path,
		Length:  sel.File.Length,
		Counter: sel.Custom.Counter,
		MinRAM:  sel.Custom.MinRAM,
	}
}

// checkRAM fails with result 2 when t needs more memory than is available.
// Unknown available memory is logged, not fatal: a requirement the device
// cannot check is no reason to stay on old software (free space is treated
// the same way).
func (c *Client) checkRAM(t step.Target) error {
	if t.MinRAM == 0 {
		return nil
	}
	avail, err := c.cfg.MemAvailable()
	if err != nil {
		c.log.Warn("cannot tell the available memory; fetching anyway", "target", t.Name, "min_ram", t.MinRAM, "err", err)
		return nil
	}
	if avail < t.MinRAM {
		return &step.Error{Result: swu.ResultNoRAM,
			Detail: fmt.Sprintf("Package %s needs %s of RAM, %s available", t.Name, formatBytes(t.MinRAM), formatBytes(avail)),
			Err:    fmt.Errorf("%w: min_ram %d > MemAvailable %d bytes", ErrNoRAM, t.MinRAM, avail)}
	}
	c.log.Info("enough RAM for the package", "target", t.Name, "min_ram", t.MinRAM, "available", avail)
	return nil
}

// formatBytes writes n for people: bytes below 1 KiB, otherwise the
// largest binary unit it reaches, with one decimal unless exact. The
// decimal is truncated, not rounded, so that an amount just below a
// requirement never reads as equal to or above it ("511.9 MiB", not
// "512.0 MiB").
func formatBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	i, unit := 0, uint64(1024)
	for i+1 < len(units) && n/unit >= 1024 {
		i, unit = i+1, unit*1024
	}
	whole, rest := n/unit, n%unit
	if rest == 0 {
		return fmt.Sprintf("%d %ciB", whole, units[i])
	}
	// rest < unit <= 2^60, so rest*10 fits 64 bits.
	return fmt.Sprintf("%d.%d %ciB", whole, rest*10/unit, units[i])
}

// Sentinel causes wrapped in *step.Error.Err, for errors.Is.
var (
	// ErrNoUpdate: Fetch without a target found nothing newer.
	ErrNoUpdate = step.ErrNothingNewer
	// ErrWithdrawn: the target to fetch is no longer in the signed metadata.
	ErrWithdrawn = errors.New("package withdrawn")
	// ErrWrongModel: the target to fetch is not signed for this model.
	ErrWrongModel = errors.New("package for another model")
	// ErrNotNewer: the target to fetch is not above the installed counter.
	ErrNotNewer = errors.New("package not newer than the installed software")
	// ErrMetadata: the signed metadata verified but is unusable.
	ErrMetadata = errors.New("unusable metadata")
	// ErrNoRAM: the package needs more RAM than the device has available.
	ErrNoRAM = errors.New("not enough RAM")
)
