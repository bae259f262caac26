package ocf

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"di not a uuid", func(c *Config) { c.Device.ID = "dev-1" }, "not a UUID"},
		{"missing piid", func(c *Config) { c.Device.PIID = "" }, "PIID"},
		{"missing name", func(c *Config) { c.Device.Name = "" }, "name (n)"},
		{"missing model", func(c *Config) { c.Device.Model = "" }, "model (dmno)"},
		{"missing sv", func(c *Config) { c.Device.SoftwareVersion = "" }, "software version (sv)"},
		{"pi not a uuid", func(c *Config) { c.Platform.ID = "x" }, "pi"},
		{"missing mnmn", func(c *Config) { c.Platform.ManufacturerName = "" }, "mnmn"},
		{"bad mndt", func(c *Config) { c.Platform.ManufactureDate = "01.05.2024" }, "mndt"},
		{"body limit above codec", func(c *Config) { c.MaxBodySize = MaxBodySize + 1 }, "MaxBodySize"},
		{"negative observers", func(c *Config) { c.MaxObservers = -1 }, "MaxObservers"},
		{"negative timeout", func(c *Config) { c.NotifyTimeout = -1 }, "NotifyTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.mod(&cfg)
			s, err := NewServer(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewServer: %v", err)
				}
				_ = s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewUUID(t *testing.T) {
	a, err := NewUUID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewUUID()
	if !uuidRe.MatchString(a) || a == b || a[14] != '4' {
		t.Errorf("NewUUID = %q, %q", a, b)
	}
}

func TestHandleAndListenErrors(t *testing.T) {
	s, err := NewServer(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Handle(newFake("/oic/d")); err == nil {
		t.Error("duplicate href accepted")
	}
	if err := s.Handle(newFake("no-slash")); err == nil {
		t.Error("href without / accepted")
	}
	noIf := newFake("/x")
	noIf.ifaces = nil
	if err := s.Handle(noIf); err == nil {
		t.Error("resource without interfaces accepted")
	}
	if _, err := s.Listen(context.Background(), "tcp", "127.0.0.1:0"); err == nil {
		t.Error("tcp accepted")
	}
	// Two listeners on one server.
	a1, err := s.Listen(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.Listen(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Endpoints(); len(got) != 2 || got[0] != "coap://"+a1.String() || got[1] != "coap://"+a2.String() {
		t.Errorf("Endpoints = %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Listen(context.Background(), "udp4", "127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Close = %v, want ErrClosed", err)
	}
	if err := s.Handle(newFake("/late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Handle after Close = %v, want ErrClosed", err)
	}
	s.Notify(HrefDevice) // harmless after Close
}

func TestServeStopsOnCancel(t *testing.T) {
	s, err := NewServer(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen(context.Background(), "udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
	if _, err := s.Listen(context.Background(), "udp4", "127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Errorf("server still open after Serve returned: %v", err)
	}
}

// TestWildcardEndpoints enumerates a wildcard listener's addresses without
// binding one (tests bind loopback only).
func TestWildcardEndpoints(t *testing.T) {
	l4 := &listener{network: "udp4", scheme: "coap", addr: &net.UDPAddr{IP: net.IPv4zero, Port: 1234}}
	var has127 bool
	for _, ip := range listenerIPs(l4) {
		if !ip.Is4() || ip.IsUnspecified() {
			t.Errorf("udp4 wildcard lists %v", ip)
		}
		has127 = has127 || ip == netip.MustParseAddr("127.0.0.1")
	}
	if !has127 {
		t.Errorf("udp4 wildcard does not list 127.0.0.1: %v", listenerIPs(l4))
	}
	for _, ip := range listenerIPs(&listener{network: "udp6", addr: &net.UDPAddr{IP: net.IPv6unspecified}}) {
		if !ip.Is6() {
			t.Errorf("udp6 wildcard lists %v", ip)
		}
	}

	for _, tc := range []struct {
		ip   string
		want string
	}{
		{"192.0.2.1", "192.0.2.1:5683"},
		{"::1", "[::1]:5683"},
		{"fe80::1%eth0", "[fe80::1]:5683"},
	} {
		if got := hostPort(netip.MustParseAddr(tc.ip), 5683); got != tc.want {
			t.Errorf("hostPort(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}
