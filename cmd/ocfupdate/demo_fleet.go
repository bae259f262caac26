package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/acl"
	"github.com/ocfupdate/ocfupdate/internal/agent"
	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/fetch"
	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/sample"
	"github.com/ocfupdate/ocfupdate/internal/tufclient"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// fleetConfig describes a throwaway setup on loopback: a signed repository
// with a package per version, served over HTTPS (at a limited rate if
// asked), and devices on the first version. The demo and the rollout
// benchmark use it.
type fleetConfig struct {
	Dir         string   // everything lives here
	Devices     int      // how many devices
	Model       string   // their dmno
	Versions    []string // packages to publish; devices start on the first
	PackageSize int64    // payload bytes of each package
	// Rate limits the repository server to this many bytes a second,
	// shared by all downloads (see serveRepo); 0 is unlimited.
	Rate   int64
	Logger *slog.Logger
	// Creds, when set, secure every device as ocfupdated --creds does
	// (cmd/ocfupdated/security.go): a CoAPs endpoint with these
	// credentials, and the default access rules (discovery for anybody,
	// read for any authenticated peer, everything for the PSK
	// identities), so that plain CoAP reaches /oic/res, /oic/d and /oic/p
	// only. Nil: plain CoAP, everything open to everybody (demo
	// --insecure, and tests about other things than security).
	Creds *creds.Credentials
}

// fleet is a running setup. Stop ends it.
type fleet struct {
	purl      string
	repoDir   string
	endpoints []string // what to talk to: coaps:// with Creds, else coap://
	plain     []string // every device's coap:// endpoint

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	closer func()
}

// startFleet builds the repository, serves it and starts the devices as
// in-process agents with the real check, download and slots installer
// (without a restart: an in-process agent cannot re-execute itself, so it
// confirms the new version in place).
func startFleet(ctx context.Context, cfg fleetConfig) (_ *fleet, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &fleet{repoDir: filepath.Join(cfg.Dir, "repo"), closer: func() {}}
	root, err := buildRepo(f.repoDir, filepath.Join(cfg.Dir, "packages"), cfg)
	if err != nil {
		return nil, err
	}
	certPath, keyPath, err := tufrepo.GenerateSelfSigned(f.repoDir, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	serverTLS, err := tufrepo.LoadTLSConfig(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("demo certificate: no PEM certificate")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("repository listener: %w", err)
	}
	f.purl = "https://" + ln.Addr().String()
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	defer func() {
		if err != nil {
			_ = f.stop()
		}
	}()
	f.spawn(func() error { return serveRepo(runCtx, ln, f.repoDir, serverTLS, cfg.Rate, cfg.Logger) })

	dl, err := fetch.New(fetch.Config{TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Logger: cfg.Logger, MaxRetries: 3, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		return nil, err
	}
	f.closer = dl.Close
	sec, err := newDeviceSecurity(cfg.Creds)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Devices {
		plain, secure, err := f.startDevice(ctx, runCtx, cfg, sec, i, root, dl)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", i+1, err)
		}
		f.plain = append(f.plain, plain)
		if cfg.Creds != nil {
			f.endpoints = append(f.endpoints, secure)
		} else {
			f.endpoints = append(f.endpoints, plain)
		}
	}
	return f, nil
}

// deviceSecurity is what ocfupdated makes of --creds without --acl
// (cmd/ocfupdated/security.go), for in-process devices.
type deviceSecurity struct {
	coapsAddr  string // "" = plain CoAP only
	dtls       ocf.DTLSConfig
	authorizer ocf.Authorizer // nil allows everything
}

func newDeviceSecurity(c *creds.Credentials) (deviceSecurity, error) {
	if c == nil {
		return deviceSecurity{}, nil
	}
	if !c.HasServerCredentials() {
		return deviceSecurity{}, errors.New("credentials without a PSK or a certificate: the devices could not serve CoAPs")
	}
	l, err := acl.Default(c.PSKIdentities())
	if err != nil {
		return deviceSecurity{}, err
	}
	s := deviceSecurity{coapsAddr: "127.0.0.1:0", authorizer: l,
		dtls: ocf.DTLSConfig{Certificate: c.Certificate, ClientCAs: c.ClientCAs}}
	if len(c.PSKIdentities()) > 0 {
		s.dtls.PSK = c.LookupPSK
	}
	return s, nil
}

// spawn runs fn until the fleet stops, keeping its error.
func (f *fleet) spawn(fn func() error) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
		}
	}()
}

// startDevice runs device i and returns its endpoints once it serves:
// coap://, and coaps:// when sec has a CoAPs address.
func (f *fleet) startDevice(ctx, runCtx context.Context, cfg fleetConfig, sec deviceSecurity, i int, root []byte, dl *fetch.Downloader) (plain, secure string, err error) {
	dir := filepath.Join(cfg.Dir, "devices", fmt.Sprintf("%03d", i+1))
	log := cfg.Logger.With("device", i+1)
	tc, err := tufclient.New(tufclient.Config{TrustedRoot: root, CacheDir: filepath.Join(dir, "tuf"),
		StagingDir: filepath.Join(dir, "downloads"), Downloader: dl, Logger: log})
	if err != nil {
		return "", "", err
	}
	inst, err := install.New(install.Config{Kind: install.KindSlots, Slots: install.SlotsConfig{
		Dir: filepath.Join(dir, "slots"), Model: cfg.Model, FactoryVersion: cfg.Versions[0]}})
	if err != nil {
		return "", "", err
	}
	ready := make(chan []string, 1)
	a, err := agent.New(agent.Config{
		CoAPSAddr:  sec.coapsAddr,
		DTLS:       sec.dtls,
		Authorizer: sec.authorizer,
		DataDir:    dir,
		CoAPAddr:   "127.0.0.1:0",
		Device: agent.Device{Name: fmt.Sprintf("demo-%03d", i+1), Model: cfg.Model, SoftwareVersion: cfg.Versions[0],
			Manufacturer: "ocfupdate demo", ManufacturingDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Checker: tc, Fetcher: tc, Installer: inst,
		Logger: log,
		Ready:  func(eps []string) { ready <- eps },
	})
	if err != nil {
		return "", "", err
	}
	done := make(chan struct{})
	f.spawn(func() error { defer close(done); return a.Run(runCtx) })
	select {
	case eps := <-ready:
		for _, ep := range eps {
			switch {
			case plain == "" && strings.HasPrefix(ep, "coap://"):
				plain = ep
			case secure == "" && strings.HasPrefix(ep, "coaps://"):
				secure = ep
			}
		}
		switch {
		case plain == "":
			return "", "", errors.New("the agent has no coap endpoint")
		case sec.coapsAddr != "" && secure == "":
			return "", "", errors.New("the agent has no coaps endpoint")
		}
		return plain, secure, nil
	case <-done:
		return "", "", errors.New("the agent stopped before serving")
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

// stop ends the devices and the repository server and waits for them.
func (f *fleet) stop() error {
	f.cancel()
	f.wg.Wait()
	f.closer()
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

// buildRepo creates and publishes the repository with a package per
// version, and returns its root.json.
func buildRepo(repoDir, pkgDir string, cfg fleetConfig) ([]byte, error) {
	return sample.Repository(repoDir, pkgDir, cfg.Model, cfg.PackageSize, cfg.Versions...)
}
