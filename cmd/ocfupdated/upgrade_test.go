package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// stateLog records the distinct swupdatestate values an observer saw.
type stateLog struct {
	mu     sync.Mutex
	states []string
}

func (l *stateLog) add(r client.Response, err error) {
	if err != nil {
		return
	}
	s, err := client.DecodeStatus(r.Body)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.states); n == 0 || l.states[n-1] != s.State {
		l.states = append(l.states, s.State)
	}
}

func (l *stateLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// until returns the states observed once the last of them is last, after
// at least one other, or what was observed when d has passed.
func (l *stateLog) until(last string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		got := l.get()
		if len(got) > 1 && got[len(got)-1] == last || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// upgrade asks the device at ep for an upgrade from purl and waits for the
// final result, returning the last status and the states observed.
func upgrade(t *testing.T, ep, purl string) (client.Status, []string) {
	t.Helper()
	c, err := client.Dial(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	href, err := c.FindResource(ctxT(t), "oic.r.softwareupdate")
	if err != nil {
		t.Fatal(err)
	}
	log := &stateLog{}
	obs, err := c.Observe(ctxT(t), href, log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = obs.Cancel(ctx)
	}()
	if _, err := c.Update(ctxT(t), href, client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	poll := c
	for {
		s, err := poll.Status(ctxT(t), href)
		if err == nil && s.State == "idle" && s.Action == "idle" && s.Result != 0 {
			if poll == c {
				// The connection never broke, so the observer gets the
				// final notification too; the poll may just have read it
				// first.
				return s, log.until(s.State, 5*time.Second)
			}
			return s, log.get()
		}
		if err != nil {
			// The device re-executes into the new version: the socket is
			// closed for a moment and the connection ends with it.
			if poll != c {
				poll.Close()
			}
			if p, derr := client.Dial(ctxT(t), ep); derr == nil {
				poll = p
				defer p.Close()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result: %+v %v (states %v)", s, err, log.get())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deviceSV(t *testing.T, ep string) string {
	t.Helper()
	c, err := client.Dial(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Device(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return d.SoftwareVersion
}

// TestUpgrade publishes 1.1.0 in a signed repository and upgrades a real
// ocfupdated from 1.0.0 over HTTPS and over CoAP, with and without the
// re-exec into the new version. Without the restart the observer sees the
// whole sequence of the spec's Figure 2.
func TestUpgrade(t *testing.T) {
	for _, tt := range []struct {
		name    string
		coap    bool
		restart bool
	}{
		{"https", false, false},
		{"coap", true, false},
		{"https with restart", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := newRepo(t, "thermo", "1.0.0", "1.1.0")
			args := []string{"--model", "thermo", "--version", "1.0.0", "--trust", repo.root}
			var purl string
			if tt.coap {
				purl = repo.serveCoAP(t)
				args = append(args, "--allow-insecure")
			} else {
				var ca string
				purl, ca = repo.serveHTTPS(t, nil)
				args = append(args, "--ca", ca)
			}
			if !tt.restart {
				args = append(args, "--restart=false")
			}
			d := startDaemon(t, t.TempDir(), args...)
			s, states := upgrade(t, d.Endpoint, purl)
			if s.Result != 1 || s.NV != "" || !slices.Contains([]string{"updated to version 1.1.0"}, s.Detail) {
				t.Fatalf("after upgrade: %+v", s)
			}
			if sv := deviceSV(t, d.Endpoint); sv != "1.1.0" {
				t.Fatalf("sv %q after upgrade", sv)
			}
			if !tt.restart {
				// Every state of Figure 2 in order, also nsa and sva, which
				// last only an instant.
				want := []string{"idle", "nsa", "svv", "sva", "upgrading", "idle"}
				if !slices.Equal(states, want) {
					t.Errorf("observed %v, want %v", states, want)
				}
			}
			// Nothing newer now: a check ends with result 0 and no nv.
			c, err := client.Dial(ctxT(t), d.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Update(ctxT(t), "/oc/swu", client.Update{Action: "isac"}); err != nil {
				t.Fatal(err)
			}
			s = waitStatus(t, c, func(s client.Status) bool {
				return s.Action == "idle" && s.Result == 0 && s.State == "idle"
			})
			if s.NV != "" {
				t.Errorf("after a check with nothing newer: %+v", s)
			}
		})
	}
}
