package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/creds"
)

// The demo's fleet: one model, rolled from demoFrom to demoTo.
const (
	demoModel = "ocfupdate-demo"
	demoFrom  = "1.0.0"
	demoTo    = "1.1.0"
)

// demoArgs are the arguments of "demo".
type demoArgs struct {
	devices     int
	concurrency int
	packageSize int64
	rate        int64 // bytes a second of the package server; 0 unlimited, rateAuto
	keep        bool
	interactive bool
	insecure    bool // plain CoAP, open access
}

// demoIdentity is the PSK identity of the demo's operator: one key,
// provisioned into every demo device's credentials.
const demoIdentity = "demo-operator"

func demoCmd(e *env) *cobra.Command {
	var a demoArgs
	var plain bool
	cmd := &cobra.Command{
		Use:   "demo [--devices N] [--non-interactive]",
		Short: "See the whole system work: repository, devices and a rollout on loopback",
		Long: `Run the whole system on this machine, with nothing to set up: create a
throwaway signed TUF repository with packages ` + demoFrom + ` and ` + demoTo + ` for the model
"` + demoModel + `", serve it over HTTPS on loopback, start --devices devices on
` + demoFrom + ` (device agents inside this process, each with its own state, CoAP
and CoAPs ports, TUF client and A/B slots), list them, and roll ` + demoTo + ` out to
all of them in waves (a canary, half, the rest) with the live view, ending in
a summary table.

The devices are secure as ocfupdated is by default: plain CoAP serves only
discovery and device information, and everything else goes over CoAPs
(DTLS). The demo makes a random pre-shared key for the identity
"` + demoIdentity + `", writes it as "ocfupdate pki psk" would (the devices'
credential file and the operator's key file, in the temporary directory)
and talks to the devices with it. --insecure runs them over plain CoAP with
access open to everybody instead (development only).

On loopback a rollout would be over in a blink, so on a terminal the package
server sends at most --rate bytes a second (` + formatRate(defaultDemoRate) + ` unless given), shared by
all downloads, and the live view has time to show each device at work: a row
per device with the steps of its update (check, download with a progress
bar, verify, install) ticked as it passes them, then a line as it finishes. --non-interactive (or output that is not a terminal, or -o json)
prints plain lines and serves at full speed unless --rate is given.

Everything lives in a temporary directory removed at the end (--keep keeps it
and prints where; devices.log there has the devices' logs). Exits 0 only if
every device finished on ` + demoTo + `.`,
		Example: `  ocfupdate demo
  ocfupdate demo --rate 1MiB/s --package-size 8MiB
  ocfupdate demo --devices 20 --non-interactive`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.interactive = !plain && e.output == formatTable && isTerminal(e.stdout)
			if a.rate == rateAuto {
				a.rate = 0
				if a.interactive {
					a.rate = defaultDemoRate
				}
			}
			return runDemo(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.IntVar(&a.devices, "devices", 5, "how many devices to simulate")
	f.IntVar(&a.concurrency, "concurrency", 4, "devices updating at once")
	a.packageSize, a.rate = defaultDemoPackage, rateAuto
	f.Var(sizeFlag{&a.packageSize}, "package-size", "payload of each package, `SIZE` in bytes or with a unit KiB, MiB, GiB")
	f.Var(rateFlag{&a.rate}, "rate", "bandwidth of the package server, shared by all downloads: `RATE` such as 2MiB/s or 512KiB/s, 0 for unlimited; auto is "+
		formatRate(defaultDemoRate)+" on a terminal, unlimited otherwise")
	f.BoolVar(&a.keep, "keep", false, "keep the temporary directory (repository, device state)")
	f.BoolVar(&plain, "non-interactive", false, "print plain lines, even on a terminal")
	f.BoolVar(&a.insecure, "insecure", false, "plain CoAP with access open to everybody, no DTLS (development only)")
	return cmd
}

func runDemo(ctx context.Context, e *env, a *demoArgs) (err error) {
	switch {
	case a.devices < 1 || a.devices > 1000:
		return usagef("--devices %d: want 1 to 1000", a.devices)
	case a.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case a.packageSize < 1 || a.packageSize > 1<<30:
		return usagef("--package-size %d: want 1 byte to 1 GiB", a.packageSize)
	case a.rate != 0 && a.rate < minRate:
		// Only a caller bypassing the flag gets here: parseRate refuses it.
		return usagef("--rate %d: want 0 (unlimited) or at least %s/s", a.rate, formatSize(minRate))
	}
	out := e.stdout
	if e.output == formatJSON {
		out = io.Discard // stdout carries only the report
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	dir, err := os.MkdirTemp("", "ocfupdate-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if a.keep {
		defer say("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	say("== 1. a signed repository with %s and %s for model %s (%s each)", demoFrom, demoTo, demoModel, humanSize(a.packageSize))
	logFile, err := os.Create(filepath.Join(dir, "devices.log"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	var devCreds *creds.Credentials
	var sec *client.Security
	if a.insecure {
		fmt.Fprintln(e.stderr, "WARNING: --insecure: the demo devices let anybody on this machine read and change them over plain CoAP.")
	} else {
		credsPath, keyPath := filepath.Join(dir, "credentials", credsFileName), filepath.Join(dir, "operator", demoIdentity+".psk")
		if devCreds, sec, err = demoCredentials(credsPath, keyPath); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		say("   a pre-shared key for identity %q, as \"ocfupdate pki psk\" makes it: operator/%s.psk, credentials/%s", demoIdentity, demoIdentity, credsFileName)
	}
	fl, err := startFleet(ctx, fleetConfig{Dir: dir, Devices: a.devices, Model: demoModel,
		Versions: []string{demoFrom, demoTo}, PackageSize: a.packageSize, Rate: a.rate, Creds: devCreds,
		Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if serr := fl.stop(); serr != nil && err == nil {
			err = fmt.Errorf("demo: stopping: %w", serr)
		}
	}()
	if a.rate > 0 {
		say("   serving %s (purl), at most %s/s shared by all downloads (--rate)", fl.purl, humanSize(a.rate))
	} else {
		say("   serving %s (purl)", fl.purl)
	}

	transport := "CoAPs (DTLS, PSK identity " + demoIdentity + ")"
	if a.insecure {
		transport = "plain CoAP, open to everybody (--insecure)"
	}
	say("== 2. %d devices on %s, each an OCF server on loopback, reached over %s", a.devices, demoFrom, transport)
	if err := demoTable(ctx, out, fl.endpoints, sec); err != nil {
		return err
	}

	say("== 3. rollout of %s: a canary, then half, then the rest", demoTo)
	cfg := client.RolloutConfig{PURL: fl.purl, Version: demoTo, Concurrency: a.concurrency, Security: sec,
		Waves: []client.WaveSize{{N: 1}, {N: 50, Percent: true}, {N: 100, Percent: true}}}
	rep, err := executeRollout(ctx, out, a.interactive, cfg, fl.endpoints, false)
	if err != nil {
		return err
	}

	say("== 4. summary")
	if err := e.emit(rep, func(w io.Writer) { reportTable(w, rep) }); err != nil {
		return err
	}
	say("== 5. the devices now")
	if err := demoTable(ctx, out, fl.endpoints, sec); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return withCode(exitInterrupted, errors.New("demo interrupted"))
	}
	if !rep.Complete() || rep.Counts.Succeeded != a.devices {
		return fmt.Errorf("demo: %d of %d devices on %s", rep.Counts.Succeeded, a.devices, demoTo)
	}
	say("all %d devices run %s", a.devices, demoTo)
	return nil
}

// demoTable shows the devices as discover does.
func demoTable(ctx context.Context, w io.Writer, eps []string, sec *client.Security) error {
	devs, err := client.Discover(ctx, client.DiscoverOptions{Endpoints: eps, Security: sec})
	if err != nil {
		return err
	}
	e := &env{stdout: w, output: formatTable}
	return e.emit(nil, func(w io.Writer) { devicesTable(w, devs) })
}

// demoCredentials provisions the demo's operator PSK as "pki psk" does: a
// random key, added to the devices' credential file at credsPath and
// written to the operator's key file at keyPath. It then reads both back
// the way ocfupdated (--creds) and ocfupdate (--psk-key-file) do.
func demoCredentials(credsPath, keyPath string) (*creds.Credentials, *client.Security, error) {
	key, err := newPSK(false)
	if err != nil {
		return nil, nil, err
	}
	if err := provisionPSK(keyPath, []string{credsPath}, demoIdentity, key); err != nil {
		return nil, nil, err
	}
	c, err := creds.Load(credsPath)
	if err != nil {
		return nil, nil, err
	}
	flags := securityFlags{pskIdentity: demoIdentity, pskKeyFile: keyPath}
	sec, err := flags.security()
	if err != nil {
		return nil, nil, err
	}
	return c, sec, nil
}
