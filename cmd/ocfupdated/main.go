// Command ocfupdated is the device agent: an OCF server over CoAP and
// CoAPs with the software update resource (oic.r.softwareupdate), pstat,
// the update state machine and its scheduler.
//
//	ocfupdated [--data-dir DIR] [--coap ADDR] [--coaps ADDR] [--creds FILE] [--acl FILE] [--model M] [--version V] ...
//
// It prints one line "listening coap://HOST:PORT" (and "listening
// coaps://HOST:PORT") per endpoint on stdout once it serves, so scripts can
// find an ephemeral port, and logs to stderr. SIGINT and SIGTERM stop it
// cleanly; SIGHUP re-reads the --crl and --acl files (docs/security.md).
//
// With the slots installer it first hands over to the program of the slot
// in use, counting the starts of a version that awaits confirmation so
// that one crashing at start is rolled back (--launch, launch.go,
// docs/packages.md): the service manager may always start the factory
// binary.
//
// Secure by default (docs/security.md): over plain CoAP only /oic/res,
// /oic/d and /oic/p can be read; the update resource and pstat need a peer
// authenticated over CoAPs (--creds) and allowed by the access control
// list (--acl, or the default). --insecure-open-acl opens everything to
// everybody, for development only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ocfupdated:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// First of all, before the state is opened or a socket bound: run the
	// slot's program instead of this one if that is what should run.
	if err := launch(o, args, log); err != nil {
		return err
	}
	mfg, _ := time.Parse(time.DateOnly, o.MfgDate)

	sec, err := newSecurity(o, stderr, log)
	if err != nil {
		return err
	}
	stopReload := reloadOnHangup(ctx, sec, log)
	defer stopReload()
	steps, err := newSteps(o, sec.creds, log)
	if err != nil {
		return err
	}
	defer steps.close()
	a, err := agent.New(agent.Config{
		DataDir:   o.DataDir,
		CoAPAddr:  o.CoAP,
		Multicast: o.Multicast,
		Href:      o.Href,
		DeviceID:  o.DeviceID,
		Device: agent.Device{
			Name: o.Name, Model: o.Model, SoftwareVersion: o.Version,
			Manufacturer: o.Manufacturer, ManufacturingDate: mfg, VendorURL: o.VendorURL,
		},
		AllowInsecure: o.AllowInsecure,
		Authorizer:    sec.authorizer,
		CoAPSAddr:     sec.coapsAddr,
		DTLS:          sec.dtls,
		Checker:       steps.checker,
		Fetcher:       steps.fetcher,
		Installer:     steps.installer,
		Logger:        log,
		Ready: func(eps []string) {
			steps.listening(o, eps)
			for _, ep := range eps {
				fmt.Fprintln(stdout, "listening", ep)
			}
		},
	})
	if err != nil {
		return err
	}
	closeSessions := a.CloseSecureSessions
	sec.closeSessions.Store(&closeSessions)
	return a.Run(ctx)
}

// reloadOnHangup re-reads the reloadable security files (--crl, --acl) on
// every SIGHUP until ctx ends or stop is called; a file that does not load
// is logged and the one in force kept. SIGHUP is caught from here on, so
// it no longer ends the process.
func reloadOnHangup(ctx context.Context, sec *security, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the CRL and ACL files")
				if err := sec.reload(log); err != nil {
					log.Error("reload failed", "err", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
