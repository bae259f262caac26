package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// The launcher tests install packages whose exec is a shell script, so
// that the test can tell which program a start ran: the script appends a
// line to a marker file, then either execs the real daemon (the factory
// binary, with the arguments it got) or fails.

const slotExec = "bin/ocfupdated"

// wrapperScript appends "launched=$OCFUPDATE_LAUNCHED" to marker and execs
// the daemon: a version that works.
func wrapperScript(marker string) string {
	return fmt.Sprintf("#!/bin/sh\necho \"launched=$%s\" >> '%s'\nexec '%s' \"$@\"\n", launchedEnv, marker, daemonBin)
}

// crashScript appends a line to marker and exits 1: a version that dies
// at once, before it could reach its health check.
func crashScript(marker string) string {
	return fmt.Sprintf("#!/bin/sh\necho \"crashed=$%s\" >> '%s'\nexit 1\n", launchedEnv, marker)
}

// writeExecPackage writes a slots package for model/version whose exec is
// the given content (mode 0755).
func writeExecPackage(t *testing.T, model, version, exe string) (string, step.Target) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pkg-"+version+".tar.gz")
	out, err := os.Create(f)
	if err != nil {
		t.Fatal(err)
	}
	err = install.WritePackage(out, install.Manifest{Version: version, Model: model, Exec: slotExec},
		install.PackageFile{Name: slotExec, Mode: 0o755, Size: int64(len(exe)), Data: strings.NewReader(exe)})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, step.Target{Version: version, Name: model + "/" + filepath.Base(f), Length: fi.Size()}
}

// addExecPackage publishes version for model with exe as its exec.
func (r *testRepo) addExecPackage(t *testing.T, model, version, exe string) {
	t.Helper()
	f, _ := writeExecPackage(t, model, version, exe)
	if _, err := tufrepo.AddTarget(r.dir, f, model, version, tufrepo.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	r.publish(t)
}

func markerLines(t *testing.T, marker string) []string {
	t.Helper()
	b, err := os.ReadFile(marker)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitExit waits for a daemon that is expected to end by itself.
func waitExit(t *testing.T, d *daemon) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	// Signal 0 fails once the process has exited and been reaped.
	for d.Cmd.Process.Signal(syscall.Signal(0)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("ocfupdated did not exit")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serviceStart starts the factory binary on dir as a service manager
// would. It returns the endpoint once the agent serves, or "" and the
// process's stderr when it exited instead. A running agent is killed at
// the end of the test.
func serviceStart(t *testing.T, dir string, args ...string) (ep, stderr string) {
	t.Helper()
	args = append([]string{"--data-dir", dir, "--coap", "127.0.0.1:0", "--log-level", "debug", "--insecure-open-acl"}, args...)
	cmd := exec.Command(daemonBin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errb := &syncBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		line := ""
		if sc.Scan() {
			line = sc.Text()
		}
		first <- line
		_, _ = io.Copy(io.Discard, out) // until the process exits
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("ocfupdated %v stderr:\n%s", args, errb.String())
		}
	})
	select {
	case line := <-first:
		if ep, ok := strings.CutPrefix(line, "listening "); ok {
			return ep, ""
		}
		if line != "" {
			t.Fatalf("unexpected line %q", line)
		}
		err := <-exited
		exited <- err // for Cleanup
		if err == nil {
			t.Fatalf("ocfupdated exited with status 0 without serving:\n%s", errb.String())
		}
		return "", errb.String()
	case <-time.After(15 * time.Second):
		t.Fatal("ocfupdated neither served nor exited")
		return "", ""
	}
}

func swuStatus(t *testing.T, ep string) client.Status {
	t.Helper()
	c, err := client.Dial(ctxT(t), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return waitStatus(t, c, func(s client.Status) bool { return s.State == "idle" && s.Action == "idle" && s.Result != 0 })
}

// TestLaunchColdStart: after an upgrade to a version with an exec, a
// restart of the factory binary (a reboot) executes the slot's program,
// which does not launch again; with --launch=false the factory binary
// stays.
func TestLaunchColdStart(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	repo := newRepo(t, "thermo", "1.0.0")
	repo.addExecPackage(t, "thermo", "1.1.0", wrapperScript(marker))
	purl, ca := repo.serveHTTPS(t, nil)
	dir := t.TempDir()
	args := []string{"--model", "thermo", "--version", "1.0.0", "--trust", repo.root, "--ca", ca}

	d := startDaemon(t, dir, args...)
	if s, _ := upgrade(t, d.Endpoint, purl); s.Result != 1 {
		t.Fatalf("upgrade: %+v", s)
	}
	// The restart after the install ran the slot's program, marked.
	slotProgram := filepath.Join(dir, "slots", "current", slotExec)
	if got := markerLines(t, marker); len(got) != 1 || got[0] != "launched="+slotProgram {
		t.Fatalf("after the upgrade the marker says %q", got)
	}
	if err := d.Signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Reboot: the service manager starts the factory binary again.
	d = startDaemon(t, dir, args...)
	launched := filepath.Join(dir, "slots", "a", slotExec) // the first install goes to a
	if got := markerLines(t, marker); len(got) != 2 || got[1] != "launched="+launched {
		t.Fatalf("after the cold start the marker says %q, want a second line launched=%s", got, launched)
	}
	if !strings.Contains(d.Stderr(), "launching the installed version") {
		t.Errorf("no launcher log line:\n%s", d.Stderr())
	}
	if proc := fmt.Sprintf("/proc/%d/exe", d.Cmd.Process.Pid); !sameFile(proc, daemonBin) {
		// The slot's wrapper execs the real daemon, which serves.
		exe, err := os.Readlink(proc)
		t.Errorf("%s = %q, %v; want %s", proc, exe, err, daemonBin)
	}
	if sv := deviceSV(t, d.Endpoint); sv != "1.1.0" {
		t.Fatalf("sv %q after the cold start", sv)
	}
	if s := swuStatus(t, d.Endpoint); s.Result != 1 {
		t.Fatalf("status after the cold start: %+v", s)
	}
	if err := d.Signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// --launch=false: the service manager is expected to start the slot's
	// program itself; this program stays.
	d = startDaemon(t, dir, append(args, "--launch=false")...)
	if got := markerLines(t, marker); len(got) != 2 {
		t.Fatalf("with --launch=false the marker says %q", got)
	}
	if strings.Contains(d.Stderr(), "launching") {
		t.Errorf("launched with --launch=false:\n%s", d.Stderr())
	}
}

// TestLaunchCrashLoop: a version whose program exits at once never reaches
// its health check. A service manager keeps starting the factory binary;
// each start is counted, and the start after MaxAttempts rolls back to the
// old version, which reports result 8.
func TestLaunchCrashLoop(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	repo := newRepo(t, "thermo", "1.0.0")
	repo.addExecPackage(t, "thermo", "1.1.0", crashScript(marker))
	purl, ca := repo.serveHTTPS(t, nil)
	dir := t.TempDir()
	args := []string{"--model", "thermo", "--version", "1.0.0", "--trust", repo.root, "--ca", ca}

	d := startDaemon(t, dir, args...)
	c, err := client.Dial(ctxT(t), d.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(ctxT(t), "/oc/swu", client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The restart into 1.1.0 ends the process: its first start.
	waitExit(t, d)

	ep := serviceLoop(t, dir, args...)
	if got := markerLines(t, marker); len(got) != install.DefaultMaxAttempts {
		t.Errorf("1.1.0 ran %d times (%q), want %d", len(got), got, install.DefaultMaxAttempts)
	}
	s := swuStatus(t, ep)
	if want := "1.1.0 did not come up in 3 starts; rolled back to 1.0.0"; s.Result != 8 || !strings.Contains(s.Detail, want) {
		t.Fatalf("status %+v, want result 8 and %q", s, want)
	}
	if sv := deviceSV(t, ep); sv != "1.0.0" {
		t.Fatalf("sv %q after the rollback", sv)
	}
	if _, err := os.Lstat(filepath.Join(dir, "slots", "current")); !os.IsNotExist(err) {
		t.Errorf("slots/current after rolling back to the factory software: %v", err)
	}
}

// serviceLoop starts the factory binary until it stays up, as systemd's
// Restart=always does, at most MaxAttempts+2 times, and checks that the
// starts that died were the launcher's: each exec'd the slot's program.
func serviceLoop(t *testing.T, dir string, args ...string) string {
	t.Helper()
	for i := 1; i <= install.DefaultMaxAttempts+2; i++ {
		ep, stderr := serviceStart(t, dir, args...)
		if ep != "" {
			if i != install.DefaultMaxAttempts {
				// The restart counted the first start; starts 2..Max
				// died; the next one rolls back and stays up.
				t.Errorf("up at service start %d, want %d", i, install.DefaultMaxAttempts)
			}
			return ep
		}
		if !strings.Contains(stderr, "launching the installed version") {
			t.Fatalf("service start %d died without launching:\n%s", i, stderr)
		}
	}
	t.Fatalf("still down after %d starts", install.DefaultMaxAttempts+2)
	return ""
}

// TestLaunchExecFails: a slot program the kernel refuses to execute (not
// a program at all) is a failed start of a version on trial: the process
// exits so that the next start counts, and the version is rolled back.
// Seeded as a crash right after the switch, without a restart.
func TestLaunchExecFails(t *testing.T) {
	dir := t.TempDir()
	seedState(t, dir, "upgrading", "upgrade")
	slots, err := install.NewSlots(install.SlotsConfig{Dir: filepath.Join(dir, "slots"), FactoryVersion: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	pkg, tg := writeExecPackage(t, "", "1.1.0", "not a program\n")
	tg.Name = "m/1.1.0"
	if err := slots.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}

	var ep string
	for i := 1; ep == ""; i++ {
		if i > install.DefaultMaxAttempts+2 {
			t.Fatalf("still down after %d starts", i-1)
		}
		var stderr string
		ep, stderr = serviceStart(t, dir)
		if ep == "" && !strings.Contains(stderr, "exec format error") {
			t.Fatalf("start %d died for another reason:\n%s", i, stderr)
		}
		if ep != "" && i != install.DefaultMaxAttempts+1 {
			t.Errorf("up at start %d, want %d", i, install.DefaultMaxAttempts+1)
		}
	}
	s := swuStatus(t, ep)
	if want := "1.1.0 did not come up in 3 starts; rolled back to 1.0.0"; s.Result != 8 || !strings.Contains(s.Detail, want) {
		t.Fatalf("status %+v, want result 8 and %q", s, want)
	}
	if sv := deviceSV(t, ep); sv != "1.0.0" {
		t.Fatalf("sv %q", sv)
	}
}

// TestLaunchPlan: the launcher's decision, in process (nothing is
// executed): when it launches, and that a started program never launches
// again.
func TestLaunchPlan(t *testing.T) {
	type fixture struct {
		o    options
		slot func(string) string // path of the slot's exec
	}
	confirmed := func(t *testing.T, f fixture) {
		installExec(t, f.o, "1.1.0", true)
	}
	pending := func(t *testing.T, f fixture) {
		installExec(t, f.o, "1.1.0", false)
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, f fixture)
		mod        func(o *options)
		self       func(f fixture) string
		marked     bool
		want       func(f fixture) launchPlan
		wantStarts int // of the pending install afterwards
		wantLog    string
	}{
		{name: "nothing installed", setup: func(*testing.T, fixture) {}},
		{
			name: "confirmed slot", setup: confirmed,
			want: func(f fixture) launchPlan { return launchPlan{exe: f.slot("a")} },
		},
		{
			name: "confirmed slot, this program is the slot's", setup: confirmed,
			self: func(f fixture) string { return filepath.Join(f.o.DataDir, "slots", "current", slotExec) },
		},
		{
			name: "confirmed slot, --launch=false", setup: confirmed,
			mod: func(o *options) { o.Launch = false },
		},
		{
			name: "exec installer", setup: confirmed,
			mod: func(o *options) { o.Installer = install.KindExec },
		},
		{
			name: "pending: on trial, start counted", setup: pending,
			want:       func(f fixture) launchPlan { return launchPlan{exe: f.slot("a"), trial: true} },
			wantStarts: 1,
		},
		{
			name: "pending, started by the launcher: not counted again", setup: pending,
			marked: true,
		},
		{
			name: "confirmed slot, exec gone: stay", wantLog: "staying on this program",
			setup: func(t *testing.T, f fixture) {
				confirmed(t, f)
				if err := os.Remove(f.slot("a")); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultOptions()
			o.DataDir = t.TempDir()
			o.Model = "thermo"
			if tt.mod != nil {
				tt.mod(&o)
			}
			f := fixture{o: o, slot: func(s string) string { return filepath.Join(o.DataDir, "slots", s, slotExec) }}
			tt.setup(t, f)
			self := "/nonexistent/ocfupdated"
			if tt.self != nil {
				self = tt.self(f)
			}
			if tt.marked {
				t.Setenv(launchedEnv, f.slot("a"))
			}
			var logb bytes.Buffer
			got := planLaunch(o, self, slog.New(slog.NewTextHandler(&logb, nil)))
			want := launchPlan{}
			if tt.want != nil {
				want = tt.want(f)
			}
			if got != want {
				t.Fatalf("planLaunch = %+v, want %+v", got, want)
			}
			if _, set := os.LookupEnv(launchedEnv); set {
				t.Errorf("%s still set: a later restart would not be counted", launchedEnv)
			}
			if !strings.Contains(logb.String(), tt.wantLog) {
				t.Errorf("log %q does not contain %q", logb.String(), tt.wantLog)
			}
			st := readSlotsState(t, o)
			if st.Pending.Starts != tt.wantStarts {
				t.Errorf("starts %d, want %d", st.Pending.Starts, tt.wantStarts)
			}
			if tt.name == "nothing installed" {
				if _, err := os.Stat(filepath.Join(o.DataDir, "slots")); !os.IsNotExist(err) {
					t.Errorf("the launcher created the slots directory: %v", err)
				}
			}
		})
	}
}

// installExec installs version into o's slots with an exec that works
// (never run here), confirmed or left pending.
func installExec(t *testing.T, o options, version string, confirm bool) {
	t.Helper()
	slots, err := install.NewSlots(slotsConfig(o, install.HealthCheck{}))
	if err != nil {
		t.Fatal(err)
	}
	pkg, tg := writeExecPackage(t, o.Model, version, "#!/bin/sh\nexit 0\n")
	if err := slots.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	if confirm {
		if err := slots.Confirm(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
}

// slotsState is the part of DATA/slots/state.json the launcher changes
// (its format is the installer's, documented in internal/install).
type slotsState struct {
	Pending struct {
		Starts int `json:"starts"`
	} `json:"pending"`
}

func readSlotsState(t *testing.T, o options) slotsState {
	t.Helper()
	var st slotsState
	b, err := os.ReadFile(filepath.Join(o.DataDir, "slots", "state.json"))
	if os.IsNotExist(err) {
		return st
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}
