package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
)

// Output kept from a command: the last tailSize bytes of stdout and stderr
// together; detailSize of them go into the human detail.
const (
	tailSize   = 4096
	detailSize = 1024
)

// defaultGrace is how long a command gets between SIGTERM and SIGKILL.
const defaultGrace = 5 * time.Second

// command is an external program run on the device's behalf.
type command struct {
	name    string        // for messages: "install command", "health command"
	args    []string      // argv; args[0] is looked up in PATH
	env     []string      // added to the agent's environment
	timeout time.Duration // 0: bounded by ctx only
	grace   time.Duration // SIGTERM → SIGKILL
}

// CommandError describes a command that did not exit with status 0.
type CommandError struct {
	Name     string // what the command was for
	ExitCode int    // -1 when it did not start or was killed by a signal
	Signal   string // the signal that ended it, if any
	TimedOut bool   // it ran past its timeout and was killed
	Timeout  time.Duration
	Output   string // the last ≤4 KiB of its stdout and stderr, interleaved
	Err      error  // from os/exec, or the context's error
}

func (e *CommandError) Error() string {
	return e.Name + ": " + e.Err.Error()
}

func (e *CommandError) Unwrap() error { return e.Err }

// Summary is a human sentence: what happened and the end of the output.
func (e *CommandError) Summary() string {
	var s string
	switch {
	case e.TimedOut:
		s = fmt.Sprintf("%s timed out after %s", e.Name, e.Timeout)
	case e.Signal != "":
		s = fmt.Sprintf("%s was killed by signal %s", e.Name, e.Signal)
	case e.ExitCode >= 0:
		s = fmt.Sprintf("%s exited with status %d", e.Name, e.ExitCode)
	default:
		s = fmt.Sprintf("%s failed: %v", e.Name, e.Err)
	}
	if out := summarize(e.Output, detailSize); out != "" {
		s += " (output: " + out + ")"
	}
	return s
}

// run runs c in its own process group and waits for it. On timeout or
// cancellation the whole group gets SIGTERM, then SIGKILL after the grace
// period, so that helpers a script started die with it. A group whose
// leader exits normally is left alone: an installer script may
// legitimately leave a detached process behind (a delayed reboot).
// It returns nil for exit status 0, else a *CommandError.
func run(ctx context.Context, c command) error {
	if len(c.args) == 0 || c.args[0] == "" {
		return &CommandError{Name: c.name, ExitCode: -1, Err: errors.New("no command configured")}
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	defer cancel()
	grace := c.grace
	if grace <= 0 {
		grace = defaultGrace
	}

	out := newTail(tailSize)
	cmd := exec.CommandContext(runCtx, c.args[0], c.args[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = out, out // Stdin stays nil: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	// Bounds both the wait after SIGTERM (then os/exec kills the leader)
	// and the wait for pipes held open by an orphaned grandchild.
	cmd.WaitDelay = grace

	if err := cmd.Start(); err != nil {
		return &CommandError{Name: c.name, ExitCode: -1, Err: err}
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	if runCtx.Err() != nil {
		// Whatever ignored SIGTERM or outlived the leader goes now.
		_ = signalGroup(pgid, syscall.SIGKILL)
	}
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && runCtx.Err() == nil) {
		return nil
	}
	ce := &CommandError{Name: c.name, ExitCode: -1, Output: out.String(), Err: err, Timeout: c.timeout}
	switch {
	case ctx.Err() != nil:
		ce.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	case runCtx.Err() != nil:
		ce.TimedOut = true
		ce.Err = fmt.Errorf("%w (%v)", runCtx.Err(), err)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ce.Signal = ws.Signal().String()
		} else {
			ce.ExitCode = ee.ExitCode()
		}
	}
	return ce
}

// signalGroup signals every process of the group led by pid. A group that
// no longer exists is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return fmt.Errorf("signal process group %d: %w", pid, err)
	}
	return nil
}

// tail is an io.Writer keeping only the last max bytes written, so that a
// chatty command cannot grow the agent's memory.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max, buf: make([]byte, 0, 2*max)} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	if len(t.buf)+len(p) > cap(t.buf) {
		keep := t.max - len(p)
		copy(t.buf, t.buf[len(t.buf)-keep:])
		t.buf = t.buf[:keep]
	}
	// buf may hold up to 2*max bytes (trimmed only when full, to copy
	// rarely); String returns the last max of them.
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}

// summarize turns command output into one line for a detail sentence: the
// last max bytes, valid UTF-8, control characters dropped, lines joined
// with " | ".
func summarize(s string, max int) string {
	if len(s) > max {
		s = s[len(s)-max:]
	}
	s = strings.ToValidUTF8(s, "")
	var lines []string
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, line)
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	s = strings.Join(lines, " | ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[len(s)-max:], "")
	}
	return s
}
