package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// options are the daemon's settings: defaults, then the config file, then
// flags given on the command line (flags win).
type options struct {
	DataDir       string `json:"data_dir"`
	CoAP          string `json:"coap"`
	Multicast     bool   `json:"multicast"`
	Href          string `json:"href"`
	Name          string `json:"name"`
	DeviceID      string `json:"device_id"` // di at the first start (e.g. the UUID of the device certificate's CN)
	Model         string `json:"model"`
	Version       string `json:"version"`
	Manufacturer  string `json:"manufacturer"`
	MfgDate       string `json:"manufacturing_date"`
	VendorURL     string `json:"vendor_url"`
	AllowInsecure bool   `json:"allow_insecure"`
	LogLevel      string `json:"log_level"`

	Trust          string   `json:"trust"`           // root.json of the vendor's TUF repository
	CA             string   `json:"ca"`              // extra PEM roots for https package sources
	Installer      string   `json:"installer"`       // slots or exec
	InstallCommand string   `json:"install_command"` // exec installer: command, {path} = package
	InstallTimeout duration `json:"install_timeout"`
	HealthCommand  string   `json:"health_command"` // run after the switch; exit 0 = healthy
	HealthTimeout  duration `json:"health_timeout"`
	Restart        bool     `json:"restart"` // re-exec into the new version after a slots install
	Launch         bool     `json:"launch"`  // at start, exec the current slot's program (slots installer)

	FetchTimeout    duration `json:"fetch_timeout"`     // longest wait for the package source
	FetchRetries    int      `json:"fetch_retries"`     // failed attempts in a row before giving up
	FetchBackoff    duration `json:"fetch_backoff"`     // first wait before a retry, doubling...
	FetchBackoffMax duration `json:"fetch_backoff_max"` // ...up to this

	// Security (docs/security.md).
	CoAPS                string   `json:"coaps"`                          // CoAPs (DTLS) listen address; "" = none
	Creds                string   `json:"creds"`                          // credential file (internal/creds)
	ACL                  string   `json:"acl"`                            // access control file (internal/acl)
	CRL                  string   `json:"crl"`                            // PEM CRLs of the client CAs (internal/creds)
	InsecureOpenACL      bool     `json:"insecure_open_acl"`              // development: everybody may do everything
	DTLSMaxSessions      int      `json:"dtls_max_sessions"`              // 0 = ocf default
	DTLSMaxHandshakes    int      `json:"dtls_max_handshakes_per_source"` // 0 = ocf default
	DTLSHandshakeTimeout duration `json:"dtls_handshake_timeout"`         // 0 = ocf default
	DTLSIdleTimeout      duration `json:"dtls_idle_timeout"`              // 0 = ocf default
}

func defaultOptions() options {
	return options{
		DataDir:         defaultDataDir(),
		CoAP:            ":5683",
		CoAPS:           ":5684",
		Multicast:       true,
		Href:            "/oc/swu",
		Name:            "ocfupdate device",
		Model:           "ocfupdate-demo",
		Version:         "1.0.0",
		Manufacturer:    "ocfupdate",
		MfgDate:         "2026-01-01",
		LogLevel:        "info",
		Installer:       "slots",
		InstallTimeout:  duration{30 * time.Minute},
		HealthTimeout:   duration{2 * time.Minute},
		Restart:         true,
		Launch:          true,
		FetchTimeout:    duration{30 * time.Second},
		FetchRetries:    5,
		FetchBackoff:    duration{time.Second},
		FetchBackoffMax: duration{30 * time.Second},
	}
}

// defaultDataDir is the user's state dir: /var/lib/ocfupdated for root,
// $XDG_STATE_HOME/ocfupdated or ~/.local/state/ocfupdated otherwise.
func defaultDataDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" { // systemd StateDirectory=
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/ocfupdated"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ocfupdated")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "ocfupdated")
	}
	return "ocfupdated-data"
}

// parseOptions reads args over the defaults, or over the config file named
// by --config: the flags are bound to the options and parsed once to find
// the file, then again over the file's values, so flags given explicitly win.
func parseOptions(args []string) (options, error) {
	o := defaultOptions()
	var configFile string
	fs := newFlagSet(&o, &configFile)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if configFile != "" {
		o = defaultOptions()
		if err := readConfig(configFile, &o); err != nil {
			return o, err
		}
		if err := newFlagSet(&o, &configFile).Parse(args); err != nil {
			return o, err
		}
	}
	return o, o.validate()
}

// newFlagSet binds every flag to a field of o.
func newFlagSet(o *options, configFile *string) *flag.FlagSet {
	fs := flag.NewFlagSet("ocfupdated", flag.ContinueOnError)
	fs.StringVar(configFile, "config", "", "JSON config file (keys as the flags, with _ for -)")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory for state, downloads and slots")
	fs.StringVar(&o.CoAP, "coap", o.CoAP, "CoAP (UDP) listen address")
	fs.BoolVar(&o.Multicast, "multicast", o.Multicast, "answer multicast discovery (only when on port 5683)")
	fs.StringVar(&o.Href, "href", o.Href, "href of the software update resource")
	fs.StringVar(&o.Name, "name", o.Name, "device name (n)")
	fs.StringVar(&o.DeviceID, "device-id", o.DeviceID, "device UUID (di) to take at the first start, e.g. the one in the device certificate (pki device --id); default: random")
	fs.StringVar(&o.Model, "model", o.Model, "device model (dmno); selects packages")
	fs.StringVar(&o.Version, "version", o.Version, "installed software version (sv) before any update")
	fs.StringVar(&o.Manufacturer, "manufacturer", o.Manufacturer, "manufacturer name (mnmn)")
	fs.StringVar(&o.MfgDate, "manufacturing-date", o.MfgDate, "manufacturing date, YYYY-MM-DD (initial lastupdate)")
	fs.StringVar(&o.VendorURL, "vendor-url", o.VendorURL, "built-in package URL used when purl is empty")
	fs.BoolVar(&o.AllowInsecure, "allow-insecure", o.AllowInsecure, "accept http:// and coap:// package URLs (development only)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.Trust, "trust", o.Trust, "trusted root.json of the vendor's TUF repository (required to update)")
	fs.StringVar(&o.CA, "ca", o.CA, "PEM file of extra CA certificates for https package sources")
	fs.StringVar(&o.Installer, "installer", o.Installer, "slots (A/B directories under the data dir) or exec (run --install-command)")
	fs.StringVar(&o.InstallCommand, "install-command", o.InstallCommand, "exec installer: command and arguments, {path} is the verified package")
	fs.Var(&o.InstallTimeout, "install-timeout", "exec installer: time limit of the install command")
	fs.StringVar(&o.HealthCommand, "health-command", o.HealthCommand, "command that must exit 0 after switching to a new version, else roll back")
	fs.Var(&o.HealthTimeout, "health-timeout", "time limit of the health check")
	fs.BoolVar(&o.Restart, "restart", o.Restart, "slots installer: re-execute into the new version after switching")
	fs.BoolVar(&o.Launch, "launch", o.Launch, "slots installer: at start, execute the current slot's program and count starts of an unconfirmed version (false when the service manager starts the slot's program itself)")
	fs.Var(&o.FetchTimeout, "fetch-timeout", "longest wait for the package source (connect, response, next bytes)")
	fs.IntVar(&o.FetchRetries, "fetch-retries", o.FetchRetries, "failed download attempts in a row without progress before giving up (result 4)")
	fs.Var(&o.FetchBackoff, "fetch-backoff", "first wait before retrying a download; doubles on each retry")
	fs.Var(&o.FetchBackoffMax, "fetch-backoff-max", "longest wait between download retries")
	fs.StringVar(&o.CoAPS, "coaps", o.CoAPS, "CoAPs (DTLS) listen address; needs --creds; empty disables it")
	fs.StringVar(&o.Creds, "creds", o.Creds, "credential file: PSKs, device certificate and key, trust anchors (docs/security.md)")
	fs.StringVar(&o.ACL, "acl", o.ACL, "access control file: JSON list of ACEs (default: see docs/security.md); reread on SIGHUP")
	fs.StringVar(&o.CRL, "crl", o.CRL, "PEM file of CRLs of the credential file's CAs: client certificates it lists are refused (ocfupdate pki revoke; reread on SIGHUP)")
	fs.BoolVar(&o.InsecureOpenACL, "insecure-open-acl", o.InsecureOpenACL, "DEVELOPMENT ONLY: let anybody read and change the device over plain CoAP")
	fs.IntVar(&o.DTLSMaxSessions, "dtls-max-sessions", o.DTLSMaxSessions, "most CoAPs sessions at a time, handshakes included (0: default)")
	fs.IntVar(&o.DTLSMaxHandshakes, "dtls-max-handshakes-per-source", o.DTLSMaxHandshakes, "most CoAPs handshakes in progress per source IP (0: default)")
	fs.Var(&o.DTLSHandshakeTimeout, "dtls-handshake-timeout", "time limit of a CoAPs handshake (0: default)")
	fs.Var(&o.DTLSIdleTimeout, "dtls-idle-timeout", "close CoAPs sessions idle that long without observers (0: default)")
	return fs
}

func readConfig(path string, o *options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func (o options) validate() error {
	var errs []error
	if _, err := time.Parse(time.DateOnly, o.MfgDate); err != nil {
		errs = append(errs, fmt.Errorf("manufacturing date %q is not YYYY-MM-DD", o.MfgDate))
	}
	switch o.Installer {
	case "slots":
	case "exec":
		if strings.TrimSpace(o.InstallCommand) == "" {
			errs = append(errs, errors.New("--installer exec needs --install-command"))
		}
	default:
		errs = append(errs, fmt.Errorf("installer %q: want slots or exec", o.Installer))
	}
	if o.FetchRetries < 0 {
		errs = append(errs, errors.New("--fetch-retries must not be negative"))
	}
	if o.FetchBackoff.Duration > o.FetchBackoffMax.Duration {
		errs = append(errs, errors.New("--fetch-backoff must not exceed --fetch-backoff-max"))
	}
	if o.InstallTimeout.Duration <= 0 || o.HealthTimeout.Duration <= 0 || o.FetchTimeout.Duration <= 0 || o.FetchBackoff.Duration <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if o.InsecureOpenACL && o.ACL != "" {
		errs = append(errs, errors.New("--insecure-open-acl and --acl exclude each other"))
	}
	if o.DTLSMaxSessions < 0 || o.DTLSMaxHandshakes < 0 || o.DTLSHandshakeTimeout.Duration < 0 || o.DTLSIdleTimeout.Duration < 0 {
		errs = append(errs, errors.New("DTLS limits must not be negative"))
	}
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", o.LogLevel))
	}
	return errors.Join(errs...)
}

// duration is a time.Duration written as "30m" in flags and in the config file.
type duration struct{ time.Duration }

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30m\": %w", err)
	}
	return d.Set(s)
}
