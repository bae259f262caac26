package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/daemontest"
)

func open(t *testing.T, ep string) *client.Device {
	t.Helper()
	d, err := client.Open(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestOpenFindsResourceByRT: the resource is found through /oic/res
// wherever the device serves it.
func TestOpenFindsResourceByRT(t *testing.T) {
	dev := startDaemon(t, "--href", "/vendor/fw")
	d := open(t, dev.Endpoint)
	if d.Href() != "/vendor/fw" {
		t.Fatalf("href %q", d.Href())
	}
	s, err := d.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.State != client.StateIdle || s.Action != client.ActionIdle || !s.Finished() {
		t.Fatalf("status %+v", s)
	}
}

func TestDiscoverEndpoints(t *testing.T) {
	a := startDaemon(t, "--name", "lamp-a", "--model", "lamp", "--version", "1.0.0")
	b := startDaemon(t, "--name", "lamp-b", "--model", "lamp", "--version", "2.0.0")
	dead := daemontest.DeadEndpoint(t)
	bHostPort := strings.TrimPrefix(b.Endpoint, "coap://")
	found, err := client.Discover(ctxT(t), client.DiscoverOptions{
		Endpoints:      []string{a.Endpoint, bHostPort, dead, a.Endpoint},
		RequestTimeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Fatalf("found %d devices, want 3 (a duplicate endpoint is listed once): %+v", len(found), found)
	}
	want := []struct{ ep, name, sv string }{{a.Endpoint, "lamp-a", "1.0.0"}, {b.Endpoint, "lamp-b", "2.0.0"}}
	for i, w := range want {
		f := found[i]
		if f.Err != nil || f.Endpoint != w.ep || f.Info.Name != w.name || f.Info.SoftwareVersion != w.sv ||
			f.Info.Model != "lamp" || f.Info.ID == "" || f.Href != "/oc/swu" || f.Status == nil || f.Status.State != "idle" {
			t.Errorf("device %d: %+v (status %+v), want %+v", i, f, f.Status, w)
		}
	}
	if found[2].Endpoint != dead || found[2].Err == nil || found[2].Status != nil {
		t.Errorf("dead endpoint: %+v", found[2])
	}
}

// TestWatchSequence follows a whole upgrade through Events (Observe plus
// reads) and sees the states of the spec's Figure 2 in order.
func TestWatchSequence(t *testing.T) {
	repo := newRepo(t, "thermo", 64<<10, "1.0.0", "1.1.0")
	dev := startDaemon(t, append(repo.deviceArgs("thermo", "1.0.0"), "--restart=false")...)
	d := open(t, dev.Endpoint)

	ctx, cancel := context.WithCancel(ctxT(t))
	events := d.Events(ctx, client.WatchOptions{Poll: 200 * time.Millisecond})
	first := <-events // the watch is registered: nothing is missed from here
	if first.Err != nil || first.Status.State != "idle" {
		t.Fatalf("first event %+v", first)
	}
	if _, err := d.Update(ctxT(t), client.Update{PURL: &repo.purl, Action: client.ActionUpgrade}); err != nil {
		t.Fatal(err)
	}
	states := []string{first.Status.State}
	var final client.Status
	for e := range events {
		if e.Err != nil {
			t.Fatalf("event error: %v", e.Err)
		}
		if s := e.Status.State; s != states[len(states)-1] {
			states = append(states, s)
		}
		if e.Status.Finished() && e.Status.Result != 0 {
			final = e.Status
			cancel()
		}
	}
	cancel()
	// Observe gives eventual consistency: a state that lasts less than a
	// notification may be skipped (nsa is often followed by svv at once),
	// but what is seen must follow the spec's Figure 2 in order.
	figure2 := []string{"idle", "nsa", "svv", "sva", "upgrading", "idle"}
	if !isSubsequence(states, figure2) || len(states) < 3 || states[len(states)-1] != "idle" {
		t.Errorf("states %v, want an ordered part of %v from idle to idle", states, figure2)
	}
	if final.Result != client.ResultSuccess || final.Detail != "updated to version 1.1.0" {
		t.Errorf("final %+v", final)
	}
	info, err := d.Info(ctxT(t))
	if err != nil || info.SoftwareVersion != "1.1.0" {
		t.Errorf("sv %q, %v", info.SoftwareVersion, err)
	}
}

// isSubsequence reports whether sub appears in seq in order.
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// TestPstatTrigger checks for and then installs an update through pstat
// tm, waiting with Wait.
func TestPstatTrigger(t *testing.T) {
	repo := newRepo(t, "plug", 4<<10, "1.0.0", "1.1.0")
	dev := startDaemon(t, append(repo.deviceArgs("plug", "1.0.0"), "--restart=false")...)
	d := open(t, dev.Endpoint)
	if _, err := d.Update(ctxT(t), client.Update{PURL: &repo.purl}); err != nil {
		t.Fatal(err)
	}
	if err := d.Trigger(ctxT(t), client.ActionCheck); err != nil {
		t.Fatal(err)
	}
	s, err := d.Wait(ctxT(t), client.WatchOptions{Poll: 100 * time.Millisecond}, nil)
	if err != nil || s.State != client.StateNSA || s.NV != "1.1.0" || s.Result != client.ResultIdle {
		t.Fatalf("after tm isac: %+v, %v", s, err)
	}
	var seen []string
	if err := d.Trigger(ctxT(t), client.ActionUpgrade); err != nil {
		t.Fatal(err)
	}
	s, err = d.Wait(ctxT(t), client.WatchOptions{Poll: 100 * time.Millisecond}, func(e client.Event) {
		seen = append(seen, e.Status.State)
	})
	if err != nil || s.Result != client.ResultSuccess {
		t.Fatalf("after tm upgrade: %+v, %v (states %v)", s, err, seen)
	}
	if err := d.Trigger(ctxT(t), "reboot"); err == nil {
		t.Error("Trigger accepted an unknown action")
	}
}

// TestWaitFollowsRestart: the device re-executes itself into the new
// version (same port); Wait dials again and reports the outcome.
func TestWaitFollowsRestart(t *testing.T) {
	repo := newRepo(t, "cam", 4<<10, "1.0.0", "1.1.0")
	dev := startDaemon(t, repo.deviceArgs("cam", "1.0.0")...)
	d := open(t, dev.Endpoint)
	if _, err := d.Update(ctxT(t), client.Update{PURL: &repo.purl, Action: client.ActionUpgrade}); err != nil {
		t.Fatal(err)
	}
	s, err := d.Wait(ctxT(t), client.WatchOptions{Poll: 100 * time.Millisecond, RequestTimeout: time.Second}, nil)
	if err != nil || s.Result != client.ResultSuccess {
		t.Fatalf("wait: %+v, %v", s, err)
	}
	info, err := d.Info(ctxT(t))
	if err != nil || info.SoftwareVersion != "1.1.0" {
		t.Fatalf("after restart: sv %q, %v", info.SoftwareVersion, err)
	}
}

// TestErrorsSurfaced: refusals carry the device's diagnostic, failed
// updates the result and detail.
func TestErrorsSurfaced(t *testing.T) {
	repo := newRepo(t, "lock", 4<<10, "1.0.0")
	dev := startDaemon(t, repo.deviceArgs("lock", "1.0.0")...)
	d := open(t, dev.Endpoint)

	bad, past := "https://user:secret@repo.example/x", time.Now().Add(-time.Hour)
	for _, tt := range []struct {
		name     string
		u        client.Update
		property string
	}{
		{"bad purl", client.Update{PURL: &bad}, "purl"},
		{"time in the past", client.Update{Action: client.ActionUpgrade, At: &past}, "updatetime"},
		{"bad action", client.Update{Action: "reboot"}, "swupdateaction"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Update(ctxT(t), tt.u)
			de, ok := errors.AsType[*client.DeviceError](err)
			if !ok {
				t.Fatalf("error %v (%T), want a *DeviceError", err, err)
			}
			if de.Code != codes.BadRequest || de.Property != tt.property || de.Message == "" {
				t.Errorf("diagnostic %+v, want 4.00 naming %s", de, tt.property)
			}
		})
	}
	t.Run("failed update", func(t *testing.T) {
		missing := repo.purl + "/no/such/repository"
		if _, err := d.Update(ctxT(t), client.Update{PURL: &missing, Action: client.ActionUpgrade}); err != nil {
			t.Fatal(err)
		}
		s, err := d.Wait(ctxT(t), client.WatchOptions{Poll: 100 * time.Millisecond}, nil)
		if !errors.Is(err, client.ErrUpdateFailed) || s.Result != 404 || s.Detail == "" ||
			!strings.Contains(err.Error(), s.Detail) {
			t.Errorf("wait: %+v, %v; want result 404 with its detail in the error", s, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
		defer cancel()
		if _, err := client.Open(ctx, daemontest.DeadEndpoint(t)); err == nil {
			t.Error("Open of a dead endpoint succeeded")
		}
	})
}

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"coap://127.0.0.1:5684", "127.0.0.1:5684", ""},
		{"127.0.0.1:9", "127.0.0.1:9", ""},
		{"lamp.local", "lamp.local:5683", ""},
		{"coap://[::1]:7/", "[::1]:7", ""},
		{"[fe80::1%eth0]:5683", "[fe80::1%eth0]:5683", ""},
		{"coap://[fe80::1%25eth0]:5683", "[fe80::1%eth0]:5683", ""},
		{"coaps://h:1", "", "scheme"},
		{"coap://h:1/oic/res", "", "path"},
		{"coap://h:99999", "", "port"},
		{"", "", "no host"},
		{":5683", "", "no host"},
	} {
		got, err := client.ParseEndpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseEndpoint(%q) = %q, %v; want an error about %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
