package ocf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Multicast discovery needs port 5683, which tests never bind on the host.
// The test makes a network namespace (IPv4 multicast routed through lo,
// IPv6 over a veth pair), and re-executes its own test binary inside it;
// TestMain sees netnsChildEnv and runs runNetnsChild instead of the tests.

const netnsChildEnv = "OCF_TEST_NETNS_CHILD"

func TestMulticastDiscovery(t *testing.T) {
	ipBin, err := exec.LookPath("ip")
	switch {
	case err != nil:
		t.Skip("multicast test needs a network namespace: the ip command is not installed")
	case os.Geteuid() != 0:
		t.Skip("multicast test needs a network namespace: creating one needs root")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ns := "ocftest-" + hex.EncodeToString(suffix)
	ip := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ipBin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		if err := ip("netns", "del", ns); err != nil {
			t.Errorf("remove namespace: %v", err)
		}
	})
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "set", "lo", "multicast", "on"},
		{"route", "add", "224.0.0.0/4", "dev", "lo"},
	} {
		if err := ip(append([]string{"netns", "exec", ns, ipBin}, args...)...); err != nil {
			t.Fatalf("set up namespace: %v", err)
		}
	}
	// IPv6 link-local multicast needs a link-local address, which lo has
	// not: a veth pair, with duplicate address detection off so the
	// addresses are usable at once.
	sysctl, err := exec.LookPath("sysctl")
	if err != nil {
		t.Skip("multicast test needs sysctl to set up IPv6 in the namespace")
	}
	for _, args := range [][]string{
		{sysctl, "-w", "net.ipv6.conf.all.accept_dad=0"},
		{sysctl, "-w", "net.ipv6.conf.default.accept_dad=0"},
		{ipBin, "link", "add", "ocf0", "type", "veth", "peer", "name", "ocf1"},
		{ipBin, "link", "set", "ocf0", "up"},
		{ipBin, "link", "set", "ocf1", "up"},
	} {
		if err := ip(append([]string{"netns", "exec", ns}, args...)...); err != nil {
			t.Fatalf("set up namespace: %v", err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ipBin, "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("multicast scenario failed: %v", err)
	}
}

// runNetnsChild is the scenario inside the namespace; it returns the exit
// code and explains failures on stderr.
func runNetnsChild() int {
	if err := multicastScenario(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "multicast discovery: ok")
	return 0
}

func multicastScenario() error {
	cfg := Config{
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Multicast: true,
		Device:    DeviceInfo{ID: testDI, Name: "ns", PIID: testPIID, Model: "m", SoftwareVersion: "1"},
		Platform:  PlatformInfo{ID: testPI, ManufacturerName: "ACME"},
	}
	s, err := NewServer(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Listen(ctx, "udp4", "0.0.0.0:5683"); err != nil {
		return err
	}
	if _, err := s.Listen(ctx, "udp6", "[::]:5683"); err != nil {
		return err
	}
	groups := []struct {
		network string
		group   *net.UDPAddr
	}{
		{"udp4", &net.UDPAddr{IP: net.ParseIP(MulticastIPv4), Port: MulticastPort}},
		{"udp6", &net.UDPAddr{IP: net.ParseIP(MulticastIPv6), Port: MulticastPort, Zone: "ocf1"}},
	}
	if err := waitLinkLocal("ocf1"); err != nil {
		return err
	}
	for _, g := range groups {
		if err := discoverOver(g.network, g.group); err != nil {
			return fmt.Errorf("%s %s: %w", g.network, g.group, err)
		}
		fmt.Fprintf(os.Stderr, "%s %s: discovery answered, silent on no match and on errors\n", g.network, g.group)
	}
	return nil
}

// waitLinkLocal waits until the interface has its IPv6 link-local address.
func waitLinkLocal(name string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsLinkLocalUnicast() && ipn.IP.To4() == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has no IPv6 link-local address", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// discoverOver sends multicast requests that must stay unanswered (a filter
// matching nothing, an unknown href) and then one that matches: the first
// reply must be for the last.
func discoverOver(network string, group *net.UDPAddr) error {
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	send := func(mid int32, token, path string, query ...string) error {
		m := message.Message{Type: message.NonConfirmable, Code: codes.GET, MessageID: mid, Token: []byte(token)}
		buf := make([]byte, 256)
		if m.Options, _, err = m.Options.SetPath(buf, path); err != nil {
			return err
		}
		for _, q := range query {
			m.Options = m.Options.Add(message.Option{ID: message.URIQuery, Value: []byte(q)})
		}
		n, err := coder.DefaultCoder.Size(m)
		if err != nil {
			return err
		}
		b := make([]byte, n)
		if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
			return err
		}
		_, err = c.WriteToUDP(b, group)
		return err
	}
	if err := send(1, "none", "/oic/res", "rt=no.such.type"); err != nil {
		return err
	}
	if err := send(2, "err", "/no/such/href"); err != nil {
		return err
	}
	if err := send(3, "match", "/oic/res", "rt=oic.wk.p"); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		return fmt.Errorf("no reply to multicast discovery: %w", err)
	}
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(buf[:n], &m); err != nil {
		return err
	}
	if !bytes.Equal(m.Token, []byte("match")) {
		return fmt.Errorf("first reply from %v is for token %q, want only the matching request answered", from, m.Token)
	}
	if m.Type != message.NonConfirmable || m.Code != codes.Content {
		return fmt.Errorf("reply is %v %v, want NON 2.05", m.Type, m.Code)
	}
	var links []link
	if err := Decode(m.Payload, &links); err != nil {
		return err
	}
	if len(links) != 1 || links[0].Href != HrefPlatform || len(links[0].EPS) == 0 {
		return fmt.Errorf("links = %+v", links)
	}
	// The peer is not on loopback: loopback endpoints would mislead it.
	if slices.ContainsFunc(links[0].EPS, func(e linkEP) bool {
		return strings.Contains(e.EP, "127.0.0.1") || strings.Contains(e.EP, "[::1]")
	}) {
		return fmt.Errorf("eps for a remote peer list loopback: %v", links[0].EPS)
	}
	return nil
}
