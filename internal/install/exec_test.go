package install

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

func newExec(t testing.TB, script string, mod func(*ExecConfig)) (*Exec, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := ExecConfig{
		Dir:            filepath.Join(dir, "state"),
		Command:        []string{"sh", "-c", script, "install-script"},
		Model:          "thermo",
		FactoryVersion: "1.0.0",
		KillGrace:      200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

func TestExecInstallSuccess(t *testing.T) {
	// $0 is "install-script", $1 the appended package path.
	script := `printf '%s\n' "$1" "$OCFUPDATE_PACKAGE" "$OCFUPDATE_VERSION" "$OCFUPDATE_TARGET" "$OCFUPDATE_MODEL" > "$(dirname "$1")/ran"`
	e, dir := newExec(t, script, nil)
	marker := filepath.Join(dir, "marked-good")
	e.cfg.ConfirmCommand = []string{"sh", "-c", `echo "$OCFUPDATE_VERSION" > ` + marker}
	pkg, tg := goodPkg(t, dir, "1.1.0")
	var calls [][2]int64
	if err := e.Install(context.Background(), pkg, tg, func(d, tot int64) { calls = append(calls, [2]int64{d, tot}) }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ran"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{pkg, pkg, "1.1.0", tg.Name, "thermo"}, "\n") + "\n"
	if string(b) != want {
		t.Fatalf("script saw\n%s\nwant\n%s", b, want)
	}
	if len(calls) != 2 || calls[1] != [2]int64{tg.Length, tg.Length} {
		t.Fatalf("progress %v", calls)
	}
	if st := mustStatus(t, e); st.Active != "1.0.0" || st.Pending != "1.1.0" {
		t.Fatalf("before confirm %+v", st)
	}
	if err := e.Confirm(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.ActiveVersion(); v != "1.1.0" {
		t.Fatalf("active %q", v)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "1.1.0\n" {
		t.Fatalf("confirm command: %q %v", b, err)
	}
	if err := e.Confirm(context.Background(), tg); err != nil {
		t.Fatalf("repeated Confirm: %v", err)
	}
}

func TestExecInstallFailures(t *testing.T) {
	long := strings.Repeat("noise line\n", 2000) + "the real error"
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		detail  []string
		check   func(t *testing.T, ce *CommandError)
	}{
		{
			name:   "exit status with stderr tail",
			script: `echo "writing rootfs"; echo "rauc: signature mismatch" >&2; exit 3`,
			detail: []string{"install command exited with status 3", "rauc: signature mismatch", "writing rootfs"},
			check: func(t *testing.T, ce *CommandError) {
				if ce.ExitCode != 3 {
					t.Errorf("exit code %d", ce.ExitCode)
				}
			},
		},
		{
			name:   "output is bounded",
			script: `printf '` + strings.ReplaceAll(long, "\n", `\n`) + `' >&2; exit 1`,
			detail: []string{"the real error"},
			check: func(t *testing.T, ce *CommandError) {
				if len(ce.Output) != tailSize || !strings.HasSuffix(ce.Output, "the real error") {
					t.Errorf("output %d bytes, ends %q", len(ce.Output), ce.Output[len(ce.Output)-20:])
				}
			},
		},
		{
			name:   "killed by a signal",
			script: `kill -9 $$`,
			detail: []string{"install command was killed by signal killed"},
		},
		{
			name:    "timeout",
			script:  `echo started; sleep 60`,
			timeout: 300 * time.Millisecond,
			detail:  []string{"install command timed out after 300ms", "started"},
			check: func(t *testing.T, ce *CommandError) {
				if !ce.TimedOut || !errors.Is(ce, context.DeadlineExceeded) {
					t.Errorf("TimedOut %v, err %v", ce.TimedOut, ce.Err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, dir := newExec(t, tt.script, func(c *ExecConfig) { c.Timeout = tt.timeout })
			pkg, tg := goodPkg(t, dir, "1.1.0")
			err := e.Install(context.Background(), pkg, tg, nil)
			wantStepError(t, err, swu.ResultUpdateFailed, append(tt.detail, "installing 1.1.0 failed", "still on 1.0.0")...)
			if _, detail := resultOfErr(t, err); len(detail) > detailSize+200 {
				t.Errorf("detail of %d bytes", len(detail))
			}
			var ce *CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("%v has no CommandError", err)
			}
			if tt.check != nil {
				tt.check(t, ce)
			}
			st := mustStatus(t, e)
			if st.Active != "1.0.0" || st.Pending != "" || st.LastVersion != "1.1.0" || st.LastResult != 8 {
				t.Fatalf("status %+v", st)
			}
			// Confirm repeats the outcome.
			wantStepError(t, e.Confirm(context.Background(), tg), 8, "still on 1.0.0")
		})
	}
}

func TestExecLengthMismatch(t *testing.T) {
	e, dir := newExec(t, "exit 0", nil)
	pkg, tg := goodPkg(t, dir, "1.1.0")
	tg.Length++
	err := e.Install(context.Background(), pkg, tg, nil)
	wantStepError(t, err, swu.ResultValidation, "signed metadata says", "still on 1.0.0")
	if !errors.Is(err, ErrBadPackage) {
		t.Fatalf("%v is not ErrBadPackage", err)
	}
}

// TestExecKillsProcessGroup: on timeout or cancellation every process the
// script started dies, also one that ignores SIGTERM.
func TestExecKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name   string
		trap   string
		cancel bool
	}{
		{name: "timeout"},
		{name: "timeout, SIGTERM ignored", trap: "trap '' TERM; "},
		{name: "cancel", cancel: true},
		{name: "cancel, SIGTERM ignored", trap: "trap '' TERM; ", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "grandchild.pid")
			script := tt.trap + `sleep 60 & echo $! > ` + pidFile + `.tmp; mv ` + pidFile + `.tmp ` + pidFile + `; wait`
			e, _ := newExec(t, script, func(c *ExecConfig) {
				if !tt.cancel {
					c.Timeout = 500 * time.Millisecond
				}
			})
			pkg, tg := goodPkg(t, dir, "1.1.0")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.Install(ctx, pkg, tg, nil) }()
			pid := waitPidFile(t, pidFile)
			if tt.cancel {
				cancel()
			}
			err := <-done

			if tt.cancel {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Install = %v, want context.Canceled", err)
				}
				if r, _ := resultOfErr(t, err); r != 0 {
					t.Fatalf("cancellation reported as result %d", r)
				}
				if st := mustStatus(t, e); st.Pending != "" || st.LastVersion != "" {
					t.Fatalf("cancellation recorded: %+v", st)
				}
			} else {
				wantStepError(t, err, 8, "timed out", "still on 1.0.0")
			}
			waitGone(t, pid)
		})
	}
}

// waitPidFile waits for the script to report its grandchild.
func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	t.Fatal("the script did not start its grandchild")
	return 0
}

// waitGone waits for pid to be dead (gone, or a zombie nobody has reaped
// yet: in a container PID 1 may not reap). SIGKILL is asynchronous, hence
// the wait; the bound is generous, not a timing assertion.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// pid (comm) state ...
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("grandchild %d survived", pid)
}

func TestExecHealthFailure(t *testing.T) {
	tests := []struct {
		name     string
		rollback string // script; "" = none
		detail   []string
	}{
		{name: "rollback command", rollback: `echo "$OCFUPDATE_VERSION->$OCFUPDATE_ROLLBACK_TO" >> "$MARKER"`,
			detail: []string{"rolled back to 1.0.0"}},
		{name: "rollback command fails", rollback: `echo "$OCFUPDATE_VERSION->$OCFUPDATE_ROLLBACK_TO" >> "$MARKER"; echo "bootloader busy" >&2; exit 2`,
			detail: []string{"rolling back to 1.0.0 failed: rollback command exited with status 2", "bootloader busy"}},
		{name: "no rollback command", detail: []string{"no rollback command is configured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, dir := newExec(t, "exit 0", nil)
			marker := filepath.Join(dir, "rollbacks")
			t.Setenv("MARKER", marker)
			e.cfg.Health.Command = []string{"sh", "-c", `echo "app crashed on start" >&2; exit 1`}
			e.cfg.ConfirmCommand = []string{"sh", "-c", "touch " + filepath.Join(dir, "confirmed")}
			if tt.rollback != "" {
				e.cfg.RollbackCommand = []string{"sh", "-c", tt.rollback}
			}
			pkg, tg := goodPkg(t, dir, "1.1.0")
			if err := e.Install(context.Background(), pkg, tg, nil); err != nil {
				t.Fatal(err)
			}
			want := append([]string{"health check failed after installing 1.1.0", "app crashed on start"}, tt.detail...)
			err := e.Confirm(context.Background(), tg)
			wantStepError(t, err, 8, want...)
			if v, _ := e.ActiveVersion(); v != "1.0.0" {
				t.Fatalf("active %q", v)
			}
			if _, err := os.Stat(filepath.Join(dir, "confirmed")); err == nil {
				t.Fatal("confirm command ran for an unhealthy version")
			}
			// Idempotent, and the rollback command ran exactly once.
			sameOutcome(t, e.Confirm(context.Background(), tg), err)
			b, _ := os.ReadFile(marker)
			if tt.rollback != "" && string(b) != "1.1.0->1.0.0\n" {
				t.Fatalf("rollback command ran: %q", b)
			}
		})
	}
}

func TestExecConfirmCommandFailureRollsBack(t *testing.T) {
	e, dir := newExec(t, "exit 0", func(c *ExecConfig) {
		c.ConfirmCommand = []string{"sh", "-c", "echo 'cannot mark slot good' >&2; exit 1"}
		c.RollbackCommand = []string{"true"}
	})
	pkg, tg := goodPkg(t, dir, "1.1.0")
	if err := e.Install(context.Background(), pkg, tg, nil); err != nil {
		t.Fatal(err)
	}
	wantStepError(t, e.Confirm(context.Background(), tg), 8, "confirm command exited with status 1", "cannot mark slot good", "rolled back to 1.0.0")
}

// TestExecRecovery: states a crash can leave, as a fresh installer finds them.
func TestExecRecovery(t *testing.T) {
	tests := []struct {
		name    string
		pending pending
		result  swu.Result
		detail  []string
		active  string
		rolled  string // expected rollback marker content
	}{
		{name: "crashed while installing", pending: pending{Version: "1.1.0", Phase: phaseInstalling},
			result: 8, detail: []string{"install command for 1.1.0 was interrupted", "still on 1.0.0"}, active: "1.0.0"},
		{name: "restarted after install", pending: pending{Version: "1.1.0", Phase: phaseInstalled}, active: "1.1.0"},
		{name: "crashed before rollback command", pending: pending{Version: "1.1.0", Phase: phaseRollingBack, Detail: "health check failed after installing 1.1.0: x"},
			result: 8, detail: []string{"health check failed after installing 1.1.0: x", "rolled back to 1.0.0"}, active: "1.0.0", rolled: "ran\n"},
		{name: "crashed during rollback command", pending: pending{Version: "1.1.0", Phase: phaseRollingBack, Detail: "health check failed", RollbackStarted: true},
			result: 8, detail: []string{"rollback command was interrupted, back on 1.0.0"}, active: "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, dir := newExec(t, "exit 0", nil)
			marker := filepath.Join(dir, "rolled")
			e.cfg.RollbackCommand = []string{"sh", "-c", "echo ran >> " + marker}
			p := tt.pending
			if err := e.st.save(&record{Pending: &p}); err != nil {
				t.Fatal(err)
			}
			err := e.Confirm(context.Background(), step0(p.Version))
			if tt.result == 0 && err != nil {
				t.Fatal(err)
			}
			if tt.result != 0 {
				wantStepError(t, err, tt.result, tt.detail...)
			}
			if st := mustStatus(t, e); st.Active != tt.active || st.Pending != "" {
				t.Fatalf("status %+v", st)
			}
			b, _ := os.ReadFile(marker)
			if string(b) != tt.rolled {
				t.Fatalf("rollback marker %q, want %q", b, tt.rolled)
			}
		})
	}
}

func TestExecRestartHook(t *testing.T) {
	e, dir := newExec(t, "exit 0", func(c *ExecConfig) {
		c.Restart = func() error { return errors.New("reboot refused") }
	})
	pkg, tg := goodPkg(t, dir, "1.1.0")
	wantStepError(t, e.Install(context.Background(), pkg, tg, nil), 8, "restarting into 1.1.0 failed: reboot refused", "no rollback command")
	if st := mustStatus(t, e); st.Active != "1.0.0" || st.Pending != "" {
		t.Fatalf("status %+v", st)
	}
}
