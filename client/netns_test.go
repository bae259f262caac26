package client_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// Multicast discovery needs devices on port 5683, which tests never bind
// on the host. TestMulticastDiscover makes a network namespace (IPv4
// multicast routed through lo, IPv6 link-local over a veth pair) and runs
// its own test binary in it; TestMain sees netnsChildEnv (holding the path
// of ocfupdated) and runs runNetnsChild instead of the tests.
const netnsChildEnv = "CLIENT_TEST_NETNS_CHILD"

func TestMulticastDiscover(t *testing.T) {
	ipBin, err := exec.LookPath("ip")
	switch {
	case err != nil:
		t.Skip("multicast discovery needs a network namespace: the ip command is not installed")
	case os.Geteuid() != 0:
		t.Skip("multicast discovery needs a network namespace: creating one needs root")
	}
	sysctl, err := exec.LookPath("sysctl")
	if err != nil {
		t.Skip("multicast discovery needs sysctl to set up IPv6 in the namespace")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	ns := "clienttest-" + hex.EncodeToString(suffix)
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := run(ipBin, "netns", "add", ns); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		if err := run(ipBin, "netns", "del", ns); err != nil {
			t.Errorf("remove namespace: %v", err)
		}
	})
	for _, args := range [][]string{
		{ipBin, "link", "set", "lo", "up"},
		{ipBin, "link", "set", "lo", "multicast", "on"},
		{ipBin, "route", "add", "224.0.0.0/4", "dev", "lo"},
		// IPv6 link-local multicast needs a link-local address, which lo
		// has not: a veth pair, with duplicate address detection off so
		// the addresses are usable at once.
		{sysctl, "-w", "net.ipv6.conf.all.accept_dad=0"},
		{sysctl, "-w", "net.ipv6.conf.default.accept_dad=0"},
		{ipBin, "link", "add", "mc0", "type", "veth", "peer", "name", "mc1"},
		{ipBin, "link", "set", "mc0", "up"},
		{ipBin, "link", "set", "mc1", "up"},
	} {
		if err := run(append([]string{ipBin, "netns", "exec", ns}, args...)...); err != nil {
			t.Fatalf("set up namespace: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ipBin, "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+daemonBin)
	out, err := cmd.CombinedOutput()
	t.Logf("inside %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("multicast discovery failed: %v", err)
	}
}

// runNetnsChild runs the scenario inside the namespace and returns the
// exit code, explaining failures on stderr.
func runNetnsChild() int {
	if err := multicastScenario(os.Getenv(netnsChildEnv)); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return 0
}

// multicastScenario runs a device on port 5683 and discovers it by
// multicast only, over IPv4 (answer from loopback) and IPv6 (answer from a
// link-local address; the endpoint keeps the zone), and over both at once
// (one device, however many answers).
func multicastScenario(bin string) error {
	dir, err := os.MkdirTemp("", "mc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--data-dir", dir, "--coap", ":5683", "--multicast", "--insecure-open-acl",
		"--name", "mc-device", "--model", "mc", "--version", "3.1.4")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		return errors.New("ocfupdated printed no endpoint")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	for _, tt := range []struct {
		network string
		want    func(ep string) bool
	}{
		{"udp4", func(ep string) bool { return ep == "coap://127.0.0.1:5683" }},
		{"udp6", func(ep string) bool { return strings.HasPrefix(ep, "coap://[fe80:") && strings.Contains(ep, "%mc") }},
		{"", func(ep string) bool { return ep == "coap://127.0.0.1:5683" }}, // both: sorted, the IPv4 one first
	} {
		// Link-local addresses may take a moment after the veth comes up:
		// ask again a few times before giving up.
		var found []client.Discovered
		for range 5 {
			found, err = client.Discover(ctx, client.DiscoverOptions{Multicast: true, Network: tt.network, Wait: 2 * time.Second})
			if err != nil {
				return err
			}
			if len(found) > 0 {
				break
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("%q: discovered %d devices, want 1: %+v", tt.network, len(found), found)
		}
		f := found[0]
		if f.Err != nil || !tt.want(f.Endpoint) || f.Info.Name != "mc-device" || f.Info.SoftwareVersion != "3.1.4" ||
			f.Status == nil || f.Status.State != "idle" {
			return fmt.Errorf("%q: discovered %+v (status %+v)", tt.network, f, f.Status)
		}
		fmt.Fprintf(os.Stderr, "%q: found %s at %s\n", tt.network, f.Info.Name, f.Endpoint)
	}
	return nil
}
