// Package agent wires the device side together: it owns the persisted
// state, runs the state machine (internal/fsm) for requests from the CoAP
// resources (internal/swu, internal/pstat) and the scheduler
// (internal/schedule), persists before every transition (internal/store),
// runs the update steps (internal/step) and feeds their outcomes back as
// events. It holds no protocol or policy of its own: start reading at
// loop.go.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fsm"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/pstat"
	"github.com/ocfupdate/ocfupdate/internal/schedule"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/store"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Device describes the device; everything but the identity, which the agent
// generates once and persists.
type Device struct {
	Name              string    // n
	Model             string    // dmno: selects packages
	SoftwareVersion   string    // sv before any upgrade
	Manufacturer      string    // mnmn
	ManufacturingDate time.Time // mndt; also the initial lastupdate
	VendorURL         string    // the built-in package URL used when purl is ""
}

// Config configures an Agent.
type Config struct {
	DataDir   string // state, downloads, slots
	CoAPAddr  string // UDP listen address, e.g. ":5683" or "127.0.0.1:0"
	Multicast bool   // join the OCF discovery groups (only when on port 5683)
	Href      string // href of the software update resource; default swu.DefaultHref
	Device    Device
	// DeviceID, when set, is the di to take at the first start (e.g. the
	// UUID in the device certificate's CN); a data dir that already belongs
	// to another di is refused. Empty: a random UUID at the first start.
	DeviceID string

	// AllowInsecure accepts http:// and coap:// package URLs.
	AllowInsecure bool

	// Authorizer decides every request to the OCF server (internal/acl);
	// nil allows everything.
	Authorizer ocf.Authorizer
	// CoAPSAddr, when set, is the UDP address of the CoAPs (DTLS)
	// endpoint, e.g. ":5684" or "127.0.0.1:0", served with DTLS.
	CoAPSAddr string
	DTLS      ocf.DTLSConfig

	Checker   step.Checker
	Fetcher   step.Fetcher
	Installer step.Installer

	Clock  schedule.Clock // default the system clock
	Logger *slog.Logger   // default discard

	// Ready, if set, is called once with the CoAP endpoints when the agent
	// serves requests.
	Ready func(endpoints []string)
}

func (c *Config) setDefaults() {
	if c.Href == "" {
		c.Href = swu.DefaultHref
	}
	if c.Clock == nil {
		c.Clock = schedule.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Device.Name == "" {
		c.Device.Name = "ocfupdate device"
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data dir"))
	}
	if c.CoAPAddr == "" {
		errs = append(errs, errors.New("no CoAP address"))
	}
	if c.Device.Model == "" {
		errs = append(errs, errors.New("no device model (dmno)"))
	}
	if c.Device.SoftwareVersion == "" {
		errs = append(errs, errors.New("no software version (sv)"))
	}
	if c.Device.Manufacturer == "" {
		errs = append(errs, errors.New("no manufacturer (mnmn)"))
	}
	if c.DeviceID != "" && !isUUID(c.DeviceID) {
		errs = append(errs, fmt.Errorf("device id %q is not a UUID", c.DeviceID))
	}
	if c.Checker == nil || c.Fetcher == nil || c.Installer == nil {
		errs = append(errs, errors.New("checker, fetcher and installer are all required"))
	}
	if len(c.Href) < 2 || c.Href[0] != '/' {
		errs = append(errs, fmt.Errorf("href %q must start with / and name a resource", c.Href))
	}
	return errors.Join(errs...)
}

// Agent is a running device agent. Create it with New and start it with Run.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	clock schedule.Clock
	store *store.Store
	srv   *ocf.Server
	sched *schedule.Scheduler
	steps struct {
		checker   step.Checker
		fetcher   step.Fetcher
		installer step.Installer
	}

	// Owned by the loop goroutine.
	inbox     chan message
	stopped   chan struct{}
	st        persisted
	jobGen    uint64
	jobCancel context.CancelFunc
	jobs      sync.WaitGroup

	// view is what GET serves; the loop writes it, handlers read it.
	viewMu   sync.RWMutex
	view     swu.Properties
	pview    pstat.Properties
	progress *swu.Progress
	lastProg time.Time
}

// New opens the data dir (taking its lock), loads or creates the persisted
// state and builds the OCF server. Nothing is served until Run.
func New(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, store: st,
		inbox: make(chan message), stopped: make(chan struct{})}
	a.steps.checker, a.steps.fetcher, a.steps.installer = cfg.Checker, cfg.Fetcher, cfg.Installer
	if err := a.load(); err != nil {
		st.Close()
		return nil, err
	}
	if err := a.buildServer(); err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// load reads the persisted state, or creates it with a new identity on the
// first start.
func (a *Agent) load() error {
	var p persisted
	_, err := a.store.LoadVersioned(stateFile, stateVersion, &p)
	switch {
	case errors.Is(err, store.ErrNotFound):
		id, err := newIdentity()
		if err != nil {
			return err
		}
		if a.cfg.DeviceID != "" {
			id.DI = strings.ToLower(a.cfg.DeviceID)
		}
		p = persisted{Version: stateVersion, Identity: id, Machine: fsm.Initial,
			PURL: "", LastUpdate: a.cfg.Device.ManufacturingDate.UTC(), Detail: "idle"}
		if err := a.store.Save(stateFile, &p); err != nil {
			return fmt.Errorf("persist initial state: %w", err)
		}
	case err != nil:
		return fmt.Errorf("load state: %w", err)
	}
	if err := p.validate(); err != nil {
		return err
	}
	if id := a.cfg.DeviceID; id != "" && !strings.EqualFold(id, p.Identity.DI) {
		return fmt.Errorf("data dir %s belongs to device %s, not %s: use another data dir, or drop the device id", a.cfg.DataDir, p.Identity.DI, id)
	}
	a.st = p
	a.refreshView()
	return nil
}

// CloseSecureSessions ends every CoAPs session and returns how many there
// were, so that each peer shakes hands again under the credentials,
// revocations and access rules in force (after they were reloaded).
func (a *Agent) CloseSecureSessions() int { return a.srv.CloseSecureSessions() }

// Run serves until ctx is done, then stops every goroutine it started and
// closes the data dir. It recovers the persisted state first (the boot
// event and a schedule missed while the agent was down).
func (a *Agent) Run(ctx context.Context) error {
	defer a.store.Close()
	if err := a.listen(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.loop(ctx) }()
	go func() { defer wg.Done(); a.sched.Run(ctx) }()
	srvErr := make(chan error, 1)
	go func() { defer wg.Done(); srvErr <- a.srv.Serve(ctx) }()

	// Ready before recovery: a health check run by the recovery may ask
	// the agent itself through its endpoint.
	if a.cfg.Ready != nil {
		a.cfg.Ready(a.srv.Endpoints())
	}
	err := a.do(ctx, a.boot)
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-srvErr:
		}
	}
	cancel()
	a.jobs.Wait()
	wg.Wait()
	// Stopped while recovering: the loop ends only when ctx does, so
	// errStopped is a cancellation too, not a failure.
	if errors.Is(err, context.Canceled) || errors.Is(err, errStopped) {
		err = nil
	}
	return err
}

// listen binds the CoAP address, and the CoAPs one if configured. A
// wildcard CoAP address (":5683") gets one socket per family, because
// multicast discovery joins 224.0.1.187 on an IPv4 socket and ff02::158 on
// an IPv6 one; a host without IPv6 still serves IPv4.
func (a *Agent) listen(ctx context.Context) error {
	if err := a.listenPlain(ctx); err != nil {
		return err
	}
	if a.cfg.CoAPSAddr == "" {
		return nil
	}
	// One dual-stack socket: CoAPs has no multicast to join per family.
	if _, err := a.srv.ListenDTLS(ctx, "udp", a.cfg.CoAPSAddr, a.cfg.DTLS); err != nil {
		_ = a.srv.Close()
		return fmt.Errorf("listen coaps %s: %w", a.cfg.CoAPSAddr, err)
	}
	return nil
}

// listenPlain binds the CoAP address.
func (a *Agent) listenPlain(ctx context.Context) error {
	host, port, err := net.SplitHostPort(a.cfg.CoAPAddr)
	if err != nil {
		return fmt.Errorf("coap address %q: %w", a.cfg.CoAPAddr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		if _, err := a.srv.Listen(ctx, "udp", a.cfg.CoAPAddr); err != nil {
			return fmt.Errorf("listen coap %s: %w", a.cfg.CoAPAddr, err)
		}
		return nil
	}
	bound, err := a.srv.Listen(ctx, "udp4", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		return fmt.Errorf("listen coap %s: %w", a.cfg.CoAPAddr, err)
	}
	// Port 0: the IPv6 socket takes the port the IPv4 one got.
	_, p, _ := net.SplitHostPort(bound.String())
	if _, err := a.srv.Listen(ctx, "udp6", net.JoinHostPort("::", p)); err != nil {
		a.log.Warn("no IPv6 CoAP listener", "err", err)
	}
	return nil
}

// boot applies the recovery rule for the state found on disk (the state
// machine's EvBoot rows) and re-arms the schedule.
func (a *Agent) boot(ctx context.Context) error {
	a.log.Info("recovering", "state", a.st.Machine.State, "goal", a.st.Machine.Goal)
	if err := a.transition(ctx, fsm.Event{Kind: fsm.EvBoot}, nil); err != nil {
		return fmt.Errorf("recover %s: %w", a.st.Machine.State, err)
	}
	if s := a.st.Schedule; s != nil {
		a.sched.Restore(a.entry(*s))
	}
	return nil
}

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isUUID(s string) bool { return uuidRe.MatchString(s) }
