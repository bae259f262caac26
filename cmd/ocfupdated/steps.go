package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/sysmem"
	"github.com/ocfupdate/ocfupdate/internal/tufclient"
)

// embeddedRoot is a base64 root.json a vendor can build in:
//
//	go build -ldflags "-X main.embeddedRoot=$(base64 -w0 root.json)" ./cmd/ocfupdated
//
// --trust overrides it.
var embeddedRoot string

// steps are the check, fetch and install steps with what they hold open.
type steps struct {
	checker   step.Checker
	fetcher   step.Fetcher
	installer step.Installer
	close     func()
	endpoint  atomic.Value // string: our own CoAP endpoint, for the health probe
	coapAddr  string       // the --coap address to restart with ("" = unchanged)
	coapsAddr string       // the --coaps address to restart with ("" = unchanged)
}

// listening records where the agent serves: the health probe asks there,
// and a restart binds the same ports even when --coap or --coaps asked for
// port 0.
func (s *steps) listening(o options, eps []string) {
	for _, ep := range eps {
		if strings.HasPrefix(ep, "coap://") {
			s.endpoint.Store(ep)
			break
		}
	}
	s.coapAddr = rebind(o.CoAP, eps, "coap://")
	s.coapsAddr = rebind(o.CoAPS, eps, "coaps://")
}

// rebind returns the address to restart with for a listen address that
// asked for port 0: the same host with the port that was bound, taken
// from the first endpoint with prefix. It is "" when nothing is to change.
func rebind(addr string, eps []string, prefix string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return ""
	}
	for _, ep := range eps {
		if rest, ok := strings.CutPrefix(ep, prefix); ok {
			if _, bound, err := net.SplitHostPort(rest); err == nil {
				return net.JoinHostPort(host, bound)
			}
		}
	}
	return ""
}

// newSteps builds the TUF client, the downloader and the installer. Without
// a trusted root the device cannot verify anything: every step then fails
// with result 8 and says why, rather than install unverified software.
func newSteps(o options, c *creds.Credentials, log *slog.Logger) (*steps, error) {
	s := &steps{close: func() {}}
	root, err := trustedRoot(o)
	if err != nil {
		return nil, err
	}
	inst, err := newInstaller(o, s, log)
	if err != nil {
		return nil, err
	}
	s.installer = inst
	if root == nil {
		u := step.Unavailable{Reason: "no trusted root configured: start ocfupdated with --trust root.json"}
		s.checker, s.fetcher = u, u
		log.Warn("no --trust root.json: updates are disabled")
		return s, nil
	}
	tlsCfg, err := tlsConfig(o.CA, c)
	if err != nil {
		return nil, err
	}
	retries := o.FetchRetries
	if retries == 0 {
		retries = -1 // fetch.Config: negative means never retry
	}
	fc := fetch.Config{
		TLSConfig: tlsCfg, AllowInsecure: o.AllowInsecure, Logger: log,
		Timeout: o.FetchTimeout.Duration, MaxRetries: retries,
		BackoffMin: o.FetchBackoff.Duration, BackoffMax: o.FetchBackoffMax.Duration,
	}
	if c != nil {
		// coaps package sources: source.psk and the device certificate
		// of the credential file, servers verified against the system
		// roots and source.ca.
		fc.DialCoAPS = c.DialCoAPS
	}
	d, err := fetch.New(fc)
	if err != nil {
		return nil, err
	}
	tc, err := tufclient.New(tufclient.Config{
		TrustedRoot: root,
		CacheDir:    filepath.Join(o.DataDir, "tuf"),
		StagingDir:  filepath.Join(o.DataDir, "downloads"),
		Downloader:  d,
		Logger:      log,
		// A package's min_ram is checked inside Fetch (result 2), where
		// the requirement comes from freshly verified metadata and before
		// any byte is downloaded: see tufclient's package doc.
		MemAvailable: sysmem.Available,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	s.checker, s.fetcher, s.close = tc, tc, d.Close
	return s, nil
}

func trustedRoot(o options) ([]byte, error) {
	if o.Trust != "" {
		// The root of all package verification: refused when other
		// users could replace it.
		b, err := creds.ReadProtected(o.Trust)
		if err != nil {
			return nil, fmt.Errorf("trust: %w", err)
		}
		return b, nil
	}
	if embeddedRoot != "" {
		b, err := base64.StdEncoding.DecodeString(embeddedRoot)
		if err != nil {
			return nil, fmt.Errorf("embedded root: %w", err)
		}
		return b, nil
	}
	return nil, nil
}

// tlsConfig trusts the system roots plus the PEM file ca and the
// credential file's source.ca, if any. Certificates are always verified:
// there is no switch to skip it (give a development server's CA with --ca).
func tlsConfig(ca string, c *creds.Credentials) (*tls.Config, error) {
	if ca == "" && (c == nil || len(c.SourceCAs) == 0) {
		return nil, nil // fetch's default: the system roots
	}
	var pool *x509.CertPool
	if c != nil {
		pool = c.SourceRoots(true)
	} else if pool, _ = x509.SystemCertPool(); pool == nil {
		pool = x509.NewCertPool()
	}
	if ca != "" {
		pem, err := creds.ReadProtected(ca)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificates in it", ca)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func newInstaller(o options, s *steps, log *slog.Logger) (install.Installer, error) {
	health := install.HealthCheck{
		Command: strings.Fields(o.HealthCommand),
		Timeout: o.HealthTimeout.Duration,
		Probe:   s.probe, // the default check: the agent came up and answers
	}
	cfg := install.Config{Kind: o.Installer}
	switch o.Installer {
	case install.KindExec:
		cfg.Exec = install.ExecConfig{
			Dir: filepath.Join(o.DataDir, "exec"), Command: strings.Fields(o.InstallCommand),
			Timeout: o.InstallTimeout.Duration, Model: o.Model, FactoryVersion: o.Version, Health: health,
		}
	default:
		cfg.Slots = slotsConfig(o, health)
		if o.Restart {
			cfg.Slots.Restart = func(exe string) error { return s.reexec(exe, log) }
		}
	}
	return install.New(cfg)
}

// probe asks the agent itself for /oic/d over CoAP.
func (s *steps) probe(ctx context.Context) error {
	ep, _ := s.endpoint.Load().(string)
	if ep == "" {
		return errors.New("the agent has no endpoint yet")
	}
	c, err := client.Dial(ctx, ep)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Device(ctx)
	return err
}

// reexec replaces this process with the new version (the slot's exec, or
// this binary again), on the same CoAP address so clients keep finding it.
// The state on disk is already "upgrading": the new process confirms. The
// installer counted this start, so the new process does not launch.
func (s *steps) reexec(exe string, log *slog.Logger) error {
	if exe == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("re-exec: %w", err)
		}
		exe = self
	}
	args := append([]string{exe}, os.Args[1:]...)
	if s.coapAddr != "" {
		args = append(args, "--coap", s.coapAddr)
	}
	if s.coapsAddr != "" {
		args = append(args, "--coaps", s.coapsAddr)
	}
	log.Info("restarting into the new version", "exec", exe)
	return execAgent(args)
}
