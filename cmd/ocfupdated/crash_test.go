package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// seedState writes the agent's state file as a previous run would have
// left it when killed in the given state (the format is documented in
// docs/state-machine.md).
func seedState(t *testing.T, dir, state, goal string) {
	t.Helper()
	doc := map[string]any{
		"version":    1,
		"identity":   map[string]string{"di": "0f5a6f3e-1d2c-4b5a-8e9f-000000000001", "piid": "0f5a6f3e-1d2c-4b5a-8e9f-000000000002", "pi": "0f5a6f3e-1d2c-4b5a-8e9f-000000000003"},
		"machine":    map[string]any{"state": state, "goal": goal, "result": 0},
		"purl":       "https://repo.example/r",
		"nv":         "1.1.0",
		"target":     map[string]any{"Version": "1.1.0", "Name": "m/1.1.0", "Length": 10},
		"lastupdate": "2026-01-01T00:00:00Z",
		"updatetime": "2026-01-01T00:00:00Z",
		"detail":     "seeded",
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitStatus(t *testing.T, c *client.Conn, ok func(client.Status) bool) client.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Status(ctxT(t), "/oc/swu")
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, %v", s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCrashRecovery starts the real daemon on a state file left in each
// state, checks the recovery rule, then SIGKILLs it at random moments while
// a client keeps changing the resource, and restarts it each time: the
// state file must always load, and the resource must show a value that was
// acknowledged before the kill or the one in flight.
func TestCrashRecovery(t *testing.T) {
	tests := []struct {
		state, goal string
		wantState   string
		wantResult  int
	}{
		{"idle", "idle", "idle", 0},
		{"idle", "upgrade", "idle", 8}, // check re-run; this build cannot fetch: 8
		{"nsa", "idle", "nsa", 0},
		{"nsa", "upgrade", "idle", 8},
		{"svv", "isvv", "idle", 8}, // download resumed, fails: 8
		{"sva", "idle", "sva", 0},
		{"sva", "upgrade", "idle", 8},
		{"upgrading", "upgrade", "idle", 8}, // confirm fails: rolled back, 8
	}
	for _, tt := range tests {
		t.Run(tt.state+"/"+tt.goal, func(t *testing.T) {
			dir := t.TempDir()
			seedState(t, dir, tt.state, tt.goal)
			d := startDaemon(t, dir)
			c, err := client.Dial(ctxT(t), d.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			s := waitStatus(t, c, func(s client.Status) bool {
				return s.State == tt.wantState && s.Result == tt.wantResult &&
					(tt.wantResult == 0 || s.Detail != "seeded")
			})
			if tt.wantResult == 8 && (s.NV != "" || s.Detail == "") {
				t.Errorf("after failed recovery: %+v", s)
			}
			c.Close()
			d.Signal(t, syscall.SIGKILL)
			killLoop(t, dir, 3)
		})
	}
}

// killLoop restarts the daemon n times, killing it with SIGKILL at a random
// moment while purl updates are in flight.
func killLoop(t *testing.T, dir string, n int) {
	t.Helper()
	acked := map[string]bool{}
	for i := 0; i < n; i++ {
		d := startDaemon(t, dir)
		c, err := client.Dial(ctxT(t), d.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Status(ctxT(t), "/oc/swu")
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		if len(acked) > 0 && !acked[s.PURL] {
			t.Fatalf("restart %d: purl %q was never sent", i, s.PURL)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("https://repo.example/%d/%d", i, j)
				mu.Lock()
				acked[p] = true // in flight counts: it may have been persisted
				mu.Unlock()
				if _, err := c.Post(ctxT(t), "/oc/swu", map[string]any{"purl": p}); err != nil {
					return // the daemon died
				}
			}
		}()
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		d.Signal(t, syscall.SIGKILL)
		close(stop)
		c.Close()
		wg.Wait()
		var doc map[string]any
		b, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if err != nil || json.Unmarshal(b, &doc) != nil || doc["version"] != 1.0 {
			t.Fatalf("state file after kill %d: %v %q", i, err, b)
		}
	}
}
