package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	piondtls "github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	coapOptions "github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	udpClient "github.com/plgd-dev/go-coap/v3/udp/client"

	"github.com/ocfupdate/ocfupdate/internal/coaprun"
	"github.com/ocfupdate/ocfupdate/internal/coapsdial"
	"github.com/ocfupdate/ocfupdate/internal/creds/credstest"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// Security end to end: real ocfupdated processes with their secure
// defaults, real DTLS on loopback (docs/security.md).

// PSKs of the tests, ASCII so that libcoap's -k takes them as they are.
var (
	operatorKey = []byte("operator-psk-0123")
	monitorKey  = []byte("monitor-psk-45678")
	sourceKey   = []byte("repository-psk-99")
)

// provisioned is a device's credential set on disk.
type provisioned struct {
	dir   string
	creds string
	ca    *credstest.CA // signs the device's and the operators' certificates
}

// provision writes creds.json (PSKs operator and monitor, a device
// certificate, the operators' CA, and source if given) and, if acl is not
// nil, acl.json.
func provision(t *testing.T, acl []map[string]any, source map[string]any) *provisioned {
	t.Helper()
	p := &provisioned{dir: t.TempDir(), ca: credstest.NewCA(t, "operators")}
	cert, key := p.ca.Issue(t, "uuid:0f5a6f3e-1d2c-4b5a-8e9f-0000000000d1")
	credstest.WriteFile(t, p.dir, "device.pem", cert, 0o644)
	credstest.WriteFile(t, p.dir, "device.key", key, 0o600)
	credstest.WriteFile(t, p.dir, "ca.pem", p.ca.PEM, 0o644)
	file := map[string]any{
		"psk": []map[string]string{
			{"identity": "operator", "key_hex": hex.EncodeToString(operatorKey)},
			{"identity": "monitor", "key_hex": hex.EncodeToString(monitorKey)},
		},
		"cert": "device.pem", "key": "device.key", "ca": []string{"ca.pem"},
	}
	if source != nil {
		file["source"] = source
	}
	p.creds = credstest.WriteJSON(t, p.dir, "creds.json", file, 0o600)
	if acl != nil {
		credstest.WriteJSON(t, p.dir, "acl.json", acl, 0o644)
	}
	return p
}

func (p *provisioned) args() []string {
	a := []string{"--creds", p.creds}
	if _, err := os.Stat(filepath.Join(p.dir, "acl.json")); err == nil {
		a = append(a, "--acl", filepath.Join(p.dir, "acl.json"))
	}
	return a
}

func pskOpts(identity string, key []byte) []piondtls.ClientOption {
	return []piondtls.ClientOption{
		piondtls.WithPSK(func([]byte) ([]byte, error) { return key, nil }),
		piondtls.WithPSKIdentityHint([]byte(identity)),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8, piondtls.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256),
	}
}

func certOpts(t *testing.T, issuer, roots *credstest.CA, cn string) []piondtls.ClientOption {
	return []piondtls.ClientOption{
		piondtls.WithCertificates(issuer.TLSCertificate(t, cn)),
		piondtls.WithRootCAs(roots.Pool()),
		piondtls.WithServerName("127.0.0.1"),
		piondtls.WithCipherSuites(piondtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8),
	}
}

// runner is a go-coap periodic runner whose goroutines end at cleanup.
func runner(t testing.TB) func(func(time.Time) bool) {
	r := coaprun.New(100 * time.Millisecond)
	t.Cleanup(r.Stop)
	return r.Func
}

// dialPlain connects to a coap:// endpoint.
func dialPlain(t *testing.T, ep string) *udpClient.Conn {
	t.Helper()
	cc, err := udp.Dial(strings.TrimPrefix(ep, "coap://"), coapOptions.WithPeriodicRunner(runner(t)),
		coapOptions.WithErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close(); <-cc.Done() })
	return cc
}

// dialSecure connects to a coaps:// endpoint and completes the handshake
// within bound; a failed handshake is the error.
func dialSecure(t *testing.T, ep string, opts []piondtls.ClientOption, bound time.Duration) (*udpClient.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cc, err := coapsdial.DialOptions(ctx, strings.TrimPrefix(ep, "coaps://"), opts,
		coapOptions.WithPeriodicRunner(runner(t)), coapOptions.WithErrors(func(error) {}))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cc.Close(); <-cc.Done() })
	return cc, nil
}

func mustDialSecure(t *testing.T, ep string, opts []piondtls.ClientOption) *udpClient.Conn {
	t.Helper()
	cc, err := dialSecure(t, ep, opts, 10*time.Second)
	if err != nil {
		t.Fatalf("handshake with %s: %v", ep, err)
	}
	return cc
}

// request sends method to path with body (CBOR, nil for none) and returns
// the code and the decoded representation.
func request(t *testing.T, cc *udpClient.Conn, method codes.Code, path string, body any) (codes.Code, map[string]any) {
	t.Helper()
	ctx := ctxT(t)
	var resp *pool.Message
	var err error
	switch method {
	case codes.GET:
		resp, err = cc.Get(ctx, path)
	case codes.POST:
		b, merr := cbor.Marshal(body)
		if merr != nil {
			t.Fatal(merr)
		}
		resp, err = cc.Post(ctx, path, message.AppCBOR, bytes.NewReader(b))
	default:
		t.Fatalf("method %v", method)
	}
	if err != nil {
		t.Fatalf("%v %s: %v", method, path, err)
	}
	defer cc.ReleaseMessage(resp)
	var rep map[string]any
	if b, err := resp.ReadBody(); err == nil && len(b) > 0 {
		_ = cbor.Unmarshal(b, &rep)
	}
	return resp.Code(), rep
}

// secureStatus is /oc/swu as read over CoAPs.
func secureStatus(t *testing.T, cc *udpClient.Conn) map[string]any {
	t.Helper()
	code, rep := request(t, cc, codes.GET, "/oc/swu", nil)
	if code != codes.Content {
		t.Fatalf("GET /oc/swu over CoAPs: %v %v", code, rep)
	}
	return rep
}

// TestSecureByDefault: with credentials and no ACL file, plain CoAP reaches
// discovery and device information only; a POST over it is 4.01 and
// changes nothing; /oic/res points at coaps for the update resource. Over
// CoAPs, a wrong PSK or a certificate from an unknown CA fails the
// handshake; a certificate from the trusted CA may read but not change.
func TestSecureByDefault(t *testing.T) {
	p := provision(t, nil, nil)
	d := startSecureDaemon(t, t.TempDir(), p.args()...)
	plain := dialPlain(t, d.Endpoint)

	for _, tt := range []struct {
		method codes.Code
		path   string
		body   any
		want   codes.Code
	}{
		{codes.GET, "/oic/res", nil, codes.Content},
		{codes.GET, "/oic/d", nil, codes.Content},
		{codes.GET, "/oic/p", nil, codes.Content},
		{codes.GET, "/oc/swu", nil, codes.Unauthorized},
		{codes.POST, "/oc/swu", map[string]any{"purl": "https://evil.example/repo", "swupdateaction": "upgrade", "updatetime": "now"}, codes.Unauthorized},
		{codes.GET, "/oic/sec/pstat", nil, codes.Unauthorized},
		{codes.POST, "/oic/sec/pstat", map[string]any{"tm": 128}, codes.Unauthorized},
	} {
		if code, rep := request(t, plain, tt.method, tt.path, tt.body); code != tt.want {
			t.Errorf("plain %v %s: %v %v, want %v", tt.method, tt.path, code, rep, tt.want)
		}
	}

	var links []struct {
		Href string `cbor:"href"`
		EPS  []struct {
			EP string `cbor:"ep"`
		} `cbor:"eps"`
	}
	resp, err := plain.Get(ctxT(t), "/oic/res")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := resp.ReadBody()
	if err := cbor.Unmarshal(b, &links); err != nil {
		t.Fatal(err)
	}
	eps := map[string][]string{}
	for _, l := range links {
		for _, e := range l.EPS {
			eps[l.Href] = append(eps[l.Href], e.EP)
		}
	}
	if !slices.Equal(eps["/oc/swu"], []string{d.Secure}) || !slices.Equal(eps["/oic/d"], []string{d.Endpoint, d.Secure}) {
		t.Errorf("eps in /oic/res: %v", eps)
	}

	op := mustDialSecure(t, d.Secure, pskOpts("operator", operatorKey))
	if s := secureStatus(t, op); s["purl"] != "" || s["swupdateaction"] != "idle" || s["swupdatestate"] != "idle" {
		t.Fatalf("the refused POST changed the resource: %v", s)
	}

	if _, err := dialSecure(t, d.Secure, pskOpts("operator", []byte("not-the-key-00000")), 2*time.Second); err == nil {
		t.Error("a handshake with a wrong PSK succeeded")
	}
	stranger := credstest.NewCA(t, "strangers")
	if _, err := dialSecure(t, d.Secure, certOpts(t, stranger, p.ca, "alice"), 2*time.Second); err == nil {
		t.Error("a certificate from an unknown CA was accepted")
	}

	alice := mustDialSecure(t, d.Secure, certOpts(t, p.ca, p.ca, "alice"))
	if code, _ := request(t, alice, codes.GET, "/oc/swu", nil); code != codes.Content {
		t.Errorf("certificate GET: %v", code)
	}
	if code, _ := request(t, alice, codes.POST, "/oc/swu", map[string]any{"purl": "https://x.example/r"}); code != codes.Forbidden {
		t.Errorf("certificate POST with the default ACL: %v, want 4.03", code)
	}
	if code, _ := request(t, op, codes.POST, "/oc/swu", map[string]any{"purl": "https://x.example/r"}); code != codes.Changed {
		t.Errorf("operator POST: %v", code)
	}
}

// TestNoSecurityFlags: a daemon started without any security flag serves
// discovery only, says why on stderr, and opens no CoAPs endpoint.
func TestNoSecurityFlags(t *testing.T) {
	d := daemontest.Start(t, daemonBin, daemontest.Options{DataDir: t.TempDir(), Mode: daemontest.Defaults})
	plain := dialPlain(t, d.Endpoint)
	if code, _ := request(t, plain, codes.GET, "/oic/d", nil); code != codes.Content {
		t.Fatalf("GET /oic/d: %v", code)
	}
	if code, _ := request(t, plain, codes.POST, "/oc/swu", map[string]any{"swupdateaction": "isac", "updatetime": "now"}); code != codes.Unauthorized {
		t.Fatalf("POST /oc/swu: %v", code)
	}
	if !strings.Contains(d.Stderr(), "WARNING: no credentials") {
		t.Fatalf("no warning on stderr:\n%s", d.Stderr())
	}

	open := startDaemon(t, t.TempDir())
	if !strings.Contains(open.Stderr(), "WARNING: --insecure-open-acl") {
		t.Fatalf("--insecure-open-acl without a warning:\n%s", open.Stderr())
	}
}

// TestReadOnlySubject: a PSK identity with only R gets 4.03 on POST and
// changes nothing, while its observation keeps reporting the changes an
// authorised operator makes.
func TestReadOnlySubject(t *testing.T) {
	p := provision(t, []map[string]any{
		{"subject": map[string]string{"psk": "monitor"}, "resources": []string{"*"}, "permission": 2},
		{"subject": map[string]string{"psk": "operator"}, "resources": []string{"*"}, "permission": 31},
	}, nil)
	d := startSecureDaemon(t, t.TempDir(), p.args()...)
	mon := mustDialSecure(t, d.Secure, pskOpts("monitor", monitorKey))

	var mu sync.Mutex
	var purls []string
	obs, err := mon.Observe(ctxT(t), "/oc/swu", func(m *pool.Message) {
		var rep map[string]any
		if b, err := m.ReadBody(); err == nil && cbor.Unmarshal(b, &rep) == nil {
			mu.Lock()
			purls = append(purls, rep["purl"].(string))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = obs.Cancel(ctxT(t)) }()
	seen := func(purl string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(purls, purl)
	}
	waitFor(t, "registration", func() bool { return seen("") })

	if code, _ := request(t, mon, codes.POST, "/oc/swu", map[string]any{"purl": "https://monitor.example/r"}); code != codes.Forbidden {
		t.Fatalf("monitor POST: %v, want 4.03", code)
	}
	if code, _ := request(t, mon, codes.POST, "/oic/sec/pstat", map[string]any{"tm": 128}); code != codes.Forbidden {
		t.Fatalf("monitor POST pstat: %v, want 4.03", code)
	}
	op := mustDialSecure(t, d.Secure, pskOpts("operator", operatorKey))
	if code, _ := request(t, op, codes.POST, "/oc/swu", map[string]any{"purl": "https://operator.example/r"}); code != codes.Changed {
		t.Fatalf("operator POST: %v", code)
	}
	waitFor(t, "notification of the operator's change", func() bool { return seen("https://operator.example/r") })
	if seen("https://monitor.example/r") {
		t.Fatal("the monitor's refused POST changed the resource")
	}
}

// serveRepoCoAPs serves the repository over CoAPs with one PSK identity.
func serveRepoCoAPs(t *testing.T, r *testRepo, identity string, key []byte) string {
	t.Helper()
	l, err := coapNet.NewDTLSListener("udp4", "127.0.0.1:0", coapNet.NewDTLSServerOptions(
		piondtls.WithPSK(func(id []byte) ([]byte, error) {
			if string(id) != identity {
				return nil, errors.New("unknown identity")
			}
			return key, nil
		}),
		piondtls.WithCipherSuites(piondtls.TLS_PSK_WITH_AES_128_CCM_8),
	))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tufrepo.ServeCoAPs(ctx, l, r.dir, tufrepo.ServeOptions{}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("coaps repository server did not stop")
		}
	})
	return "coaps://" + addr
}

// TestSecureUpgrade: the whole chain authenticated. An operator with its
// PSK runs an upgrade over CoAPs, watching it by Observe; the device
// fetches from a coaps package source with its own PSK from the credential
// file, verifies the TUF metadata, installs, and reports success. With the
// restart, the new process serves CoAPs on the same port and the operator
// reconnects.
func TestSecureUpgrade(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "without restart"
		if restart {
			name = "with restart"
		}
		t.Run(name, func(t *testing.T) {
			repo := newRepo(t, "thermo", "1.0.0", "1.1.0")
			purl := serveRepoCoAPs(t, repo, "boiler-17", sourceKey)
			p := provision(t, nil, map[string]any{"psk": map[string]string{"identity": "boiler-17", "key_hex": hex.EncodeToString(sourceKey)}})
			d := startSecureDaemon(t, t.TempDir(), append(p.args(),
				"--trust", repo.root, "--model", "thermo", "--version", "1.0.0", fmt.Sprintf("--restart=%v", restart))...)
			op := mustDialSecure(t, d.Secure, pskOpts("operator", operatorKey))

			var mu sync.Mutex
			var states []string
			obs, err := op.Observe(ctxT(t), "/oc/swu", func(m *pool.Message) {
				var rep map[string]any
				if b, err := m.ReadBody(); err == nil && cbor.Unmarshal(b, &rep) == nil {
					mu.Lock()
					if s, _ := rep["swupdatestate"].(string); len(states) == 0 || states[len(states)-1] != s {
						states = append(states, s)
					}
					mu.Unlock()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if !restart {
				defer func() { _ = obs.Cancel(ctxT(t)) }()
			}

			if code, rep := request(t, op, codes.POST, "/oc/swu", map[string]any{"purl": purl, "swupdateaction": "upgrade", "updatetime": "now"}); code != codes.Changed {
				t.Fatalf("operator POST: %v %v", code, rep)
			}
			// A fresh session per poll: a restart ends the old one.
			var s, dev map[string]any
			waitFor(t, "upgrade result", func() bool {
				cc, err := dialSecure(t, d.Secure, pskOpts("operator", operatorKey), 2*time.Second)
				if err != nil {
					return false
				}
				defer cc.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				resp, err := cc.Get(ctx, "/oc/swu")
				if err != nil {
					return false
				}
				s = nil
				if b, err := resp.ReadBody(); err != nil || cbor.Unmarshal(b, &s) != nil {
					return false
				}
				if !(s["swupdateaction"] == "idle" && s["swupdatestate"] == "idle" && s["swupdateresult"] != uint64(0)) {
					return false
				}
				_, dev = request(t, cc, codes.GET, "/oic/d", nil)
				return true
			})
			if s["swupdateresult"] != uint64(1) || dev["sv"] != "1.1.0" {
				t.Fatalf("after the upgrade: %v, sv %v", s, dev["sv"])
			}
			if restart {
				return
			}
			want := []string{"idle", "nsa", "svv", "sva", "upgrading", "idle"}
			waitFor(t, "the last notification", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slices.Equal(states, want)
			})
		})
	}
}

// TestPackageSourceSecurity: an https source whose certificate the device
// does not trust fails with result 5, and an http source without
// --allow-insecure with result 7; nothing is installed either way.
func TestPackageSourceSecurity(t *testing.T) {
	repo := newRepo(t, "thermo", "1.0.0", "1.1.0")
	untrusted, _ := repo.serveHTTPS(t, nil) // its CA is not given to the device
	for _, tt := range []struct {
		name, purl string
		result     uint64
	}{
		{"https with an untrusted certificate", untrusted, 5},
		{"http without --allow-insecure", "http://127.0.0.1:9/repo", 7},
		{"coap without --allow-insecure", "coap://127.0.0.1:9/repo", 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := provision(t, nil, nil)
			d := startSecureDaemon(t, t.TempDir(), append(p.args(),
				"--trust", repo.root, "--model", "thermo", "--version", "1.0.0", "--restart=false",
				"--fetch-retries", "1", "--fetch-backoff", "10ms", "--fetch-backoff-max", "20ms")...)
			op := mustDialSecure(t, d.Secure, pskOpts("operator", operatorKey))
			code, rep := request(t, op, codes.POST, "/oc/swu", map[string]any{"purl": tt.purl, "swupdateaction": "upgrade", "updatetime": "now"})
			if code != codes.Changed {
				t.Fatalf("POST: %v %v", code, rep)
			}
			var s map[string]any
			waitFor(t, "result", func() bool {
				s = secureStatus(t, op)
				return s["swupdateaction"] == "idle" && s["swupdatestate"] == "idle" && s["swupdateresult"] != uint64(0)
			})
			if s["swupdateresult"] != tt.result {
				t.Fatalf("result %v (%v), want %d", s["swupdateresult"], s["x.org.ocfupdate.detail"], tt.result)
			}
			if _, dev := request(t, op, codes.GET, "/oic/d", nil); dev["sv"] != "1.0.0" {
				t.Fatalf("sv %v: something was installed", dev["sv"])
			}
		})
	}
}

// TestCredentialFileChecks: the daemon refuses to start on a key others
// can read, or on an ACL file others can write, and says what to do.
func TestCredentialFileChecks(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		mode       os.FileMode
		want       string
	}{
		{"world-readable key", "device.key", 0o644, "chmod 600"},
		{"world-readable credential file", "creds.json", 0o644, "chmod 600"},
		{"group-writable ACL file", "acl.json", 0o664, "chmod go-w"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := provision(t, []map[string]any{}, nil)
			path := filepath.Join(p.dir, tt.file)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctxT(t), daemonBin, append([]string{"--data-dir", t.TempDir(), "--coap", "127.0.0.1:0",
				"--coaps", "127.0.0.1:0"}, p.args()...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !strings.Contains(string(out), path) || !strings.Contains(string(out), tt.want) {
				t.Fatalf("err %v, output %q; want a refusal naming %s and %q", err, out, path, tt.want)
			}
		})
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
