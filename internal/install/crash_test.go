package install

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// The crash tests re-run the test binary as a child that installs or
// confirms and stops at a chosen point; the parent kills it there with
// SIGKILL (a power loss, as far as the files are concerned) and then checks
// what a fresh installer makes of the directory.

const (
	helperEnv = "OCFUPDATE_INSTALL_HELPER"
	readyLine = "READY"
)

// helperArgs is what the child is told through its environment.
type helperArgs struct {
	Dir, Pkg, Version, Name string
	Length                  int64
	Action                  string // "install" or "confirm"
	Point                   string // hook point to stop at
	NthPoint                int    // stop at its n-th occurrence (1-based)
	FailHealth              bool
}

func (a helperArgs) env() []string {
	return []string{
		helperEnv + "=1",
		"H_DIR=" + a.Dir, "H_PKG=" + a.Pkg, "H_VERSION=" + a.Version, "H_NAME=" + a.Name,
		fmt.Sprintf("H_LENGTH=%d", a.Length), "H_ACTION=" + a.Action, "H_POINT=" + a.Point,
		fmt.Sprintf("H_NTH=%d", a.NthPoint), fmt.Sprintf("H_FAIL=%t", a.FailHealth),
	}
}

// TestHelperProcess is the child of the crash tests; it does nothing in a
// normal test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for the crash tests")
	}
	var length int64
	var nth int
	fmt.Sscan(os.Getenv("H_LENGTH"), &length)
	fmt.Sscan(os.Getenv("H_NTH"), &nth)
	cfg := SlotsConfig{Dir: os.Getenv("H_DIR"), Model: "thermo", FactoryVersion: "0.9.0"}
	if os.Getenv("H_FAIL") == "true" {
		cfg.Health.Command = []string{"sh", "-c", "echo 'service did not start' >&2; exit 1"}
	}
	s, err := NewSlots(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	seen := 0
	s.hook = func(point string) {
		if point != os.Getenv("H_POINT") {
			return
		}
		if seen++; seen < nth {
			return
		}
		fmt.Println(readyLine)
		time.Sleep(time.Hour) // killed here
	}
	tg := step.Target{Version: os.Getenv("H_VERSION"), Name: os.Getenv("H_NAME"), Length: length}
	switch os.Getenv("H_ACTION") {
	case "install":
		err = s.Install(context.Background(), os.Getenv("H_PKG"), tg, nil)
	case "confirm":
		err = s.Confirm(context.Background(), tg)
	}
	fmt.Printf("DONE %v\n", err) // the point was never reached
	os.Exit(3)
}

// crashAt runs the helper and kills it at its point.
func crashAt(t *testing.T, a helperArgs) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), a.env()...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if kerr := cmd.Process.Kill(); kerr != nil {
		t.Fatal(kerr)
	}
	_ = cmd.Wait()
	if err != nil || strings.TrimSpace(line) != readyLine {
		t.Fatalf("helper did not reach %s: %q %v", a.Point, line, err)
	}
}

func TestSlotsCrashRecovery(t *testing.T) {
	tests := []struct {
		name       string
		action     string
		point      string
		nth        int
		failHealth bool
		// what a fresh installer sees after the kill
		wantPhase   phase
		wantCurrent string
		// what Confirm then says
		wantResult swu.Result // 0: success
		wantDetail []string
		wantActive string
	}{
		{
			name: "mid unpack", action: "install", point: "entry", nth: 3,
			wantPhase: phaseUnpacking, wantCurrent: "a",
			wantResult: 8, wantDetail: []string{"interrupted while unpacking", "still on 1.0.0"}, wantActive: "1.0.0",
		},
		{
			name: "before the switch", action: "install", point: "staged", nth: 1,
			wantPhase: phaseSwitching, wantCurrent: "a",
			wantResult: 8, wantDetail: []string{"interrupted before the switch", "still on 1.0.0"}, wantActive: "1.0.0",
		},
		{
			name: "after the switch, healthy", action: "install", point: "switched", nth: 1,
			wantPhase: phaseSwitching, wantCurrent: "b",
			wantActive: "1.1.0",
		},
		{
			name: "after the switch, unhealthy", action: "install", point: "switched", nth: 1, failHealth: true,
			wantPhase: phaseSwitching, wantCurrent: "b",
			wantResult: 8, wantDetail: []string{"health check failed after switching to 1.1.0", "service did not start", "rolled back to 1.0.0"},
			wantActive: "1.0.0",
		},
		{
			name: "during rollback", action: "confirm", point: "rolling-back", nth: 1, failHealth: true,
			wantPhase: phaseRollingBack, wantCurrent: "b",
			wantResult: 8, wantDetail: []string{"health check failed after switching to 1.1.0", "service did not start", "rolled back to 1.0.0"},
			wantActive: "1.0.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSlots(t, nil)
			pkgDir := t.TempDir()
			installConfirmed(t, s, pkgDir, "1.0.0")
			// Many entries, so that the kill lands with some written.
			entries := goodEntries("1.1.0")
			for i := range 20 {
				entries = append(entries, entry{name: fmt.Sprintf("data/%02d", i), body: strings.Repeat("d", 4096)})
			}
			pkg, tg := writePkg(t, pkgDir, "1.1.0", buildTar(t, entries, true))
			if tt.action == "confirm" {
				if err := s.Install(context.Background(), pkg, tg, nil); err != nil {
					t.Fatal(err)
				}
			}
			crashAt(t, helperArgs{Dir: dir, Pkg: pkg, Version: tg.Version, Name: tg.Name, Length: tg.Length,
				Action: tt.action, Point: tt.point, NthPoint: tt.nth, FailHealth: tt.failHealth})

			// A fresh installer, as after a reboot.
			cfg := SlotsConfig{Dir: dir, Model: "thermo", FactoryVersion: "0.9.0"}
			if tt.failHealth {
				cfg.Health.Command = []string{"sh", "-c", "echo 'service did not start' >&2; exit 1"}
			}
			fresh, err := NewSlots(cfg)
			if err != nil {
				t.Fatal(err)
			}
			st := mustStatus(t, fresh)
			if st.Active != "1.0.0" || st.Pending != "1.1.0" || st.PendingPhase != string(tt.wantPhase) {
				t.Fatalf("after the crash: %+v", st)
			}
			if got := readLink(t, dir); got != tt.wantCurrent {
				t.Fatalf("after the crash current → %q, want %q", got, tt.wantCurrent)
			}
			if tt.wantPhase == phaseUnpacking {
				// Killed with part of the package written.
				if _, err := os.Stat(filepath.Join(dir, "b.tmp", "bin", "app")); err != nil {
					t.Fatalf("no partial unpack in b.tmp: %v", err)
				}
			}

			err = fresh.Confirm(context.Background(), tg)
			if tt.wantResult == 0 {
				if err != nil {
					t.Fatalf("Confirm: %v", err)
				}
			} else {
				wantStepError(t, err, tt.wantResult, tt.wantDetail...)
			}
			st = mustStatus(t, fresh)
			if st.Active != tt.wantActive || st.Pending != "" {
				t.Fatalf("after Confirm: %+v", st)
			}
			wantSlot := map[string]string{"1.0.0": "a", "1.1.0": "b"}[tt.wantActive]
			if got := readLink(t, dir); got != wantSlot {
				t.Fatalf("after Confirm current → %q, want %q", got, wantSlot)
			}
			for _, tmp := range []string{"a.tmp", "b.tmp", "current.tmp"} {
				if _, err := os.Lstat(filepath.Join(dir, tmp)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind: %v", tmp, err)
				}
			}
			// Same answer again.
			sameOutcome(t, fresh.Confirm(context.Background(), tg), err)
		})
	}
}

// TestSlotsInstallAfterCrashedUnpack: the agent may also simply try again;
// an interrupted unpack does not block a new Install.
func TestSlotsInstallAfterCrashedUnpack(t *testing.T) {
	s, dir := newSlots(t, nil)
	pkgDir := t.TempDir()
	installConfirmed(t, s, pkgDir, "1.0.0")
	pkg, tg := goodPkg(t, pkgDir, "1.1.0")
	crashAt(t, helperArgs{Dir: dir, Pkg: pkg, Version: tg.Version, Name: tg.Name, Length: tg.Length,
		Action: "install", Point: "entry", NthPoint: 2})
	fresh, err := NewSlots(SlotsConfig{Dir: dir, FactoryVersion: "0.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Confirm(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if v, _ := fresh.ActiveVersion(); v != "1.1.0" || readLink(t, dir) != "b" {
		t.Fatalf("active %q current %q", v, readLink(t, dir))
	}
}
