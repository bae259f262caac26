package main

import (
	"errors"
	"fmt"
)

// Exit codes. Scripts rely on them: change them only with docs/cli.md.
const (
	// exitOK: the command did what it was asked (including a serve stopped
	// by SIGINT or SIGTERM, and --help).
	exitOK = 0
	// exitFailure: the command line was understood but the command failed:
	// a missing file, a directory that is not a repository, a value the
	// repository refuses (an invalid model name, a counter that is not
	// above the highest), a port in use, a network error.
	exitFailure = 1
	// exitUsage: the command line itself is wrong: an unknown command or
	// flag, a missing or extra argument, a missing required flag, a
	// malformed flag value (duration, role, number, output format), or
	// flags that do not go together. Running it again cannot succeed.
	exitUsage = 2
	// exitHalted: a rollout halted because more devices failed than
	// --max-failures tolerates. The report says which and why.
	exitHalted = 3
	// exitInterrupted: SIGINT or SIGTERM stopped a rollout or an
	// "update --wait" before it finished (a rollout still writes its
	// report). Watching commands (watch, repo serve) exit 0 instead: being
	// stopped is how they end.
	exitInterrupted = 4
)

// exitError asks for a specific exit code; the message is still printed.
type exitError struct {
	code int
	err  error
}

func (x exitError) Error() string { return x.err.Error() }
func (x exitError) Unwrap() error { return x.err }

// withCode wraps err so that the command exits with code.
func withCode(code int, err error) error { return exitError{code: code, err: err} }

// usageError marks an error in how the command was called (exitUsage).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// runError marks an error returned by a command's run function, as opposed
// to one cobra produced while parsing the command line. Every RunE is
// wrapped to add it (wrapRunErrors), so a new subcommand gets the right
// exit codes without doing anything.
type runError struct{ err error }

func (r runError) Error() string { return r.err.Error() }
func (r runError) Unwrap() error { return r.err }

// exitCode maps an error from executing the command tree to an exit code.
// Errors cobra returns by itself (unknown flags, argument validation,
// required flags) carry no runError and are usage errors.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if x, ok := errors.AsType[exitError](err); ok {
		return x.code
	}
	if _, ok := errors.AsType[usageError](err); ok {
		return exitUsage
	}
	if _, ok := errors.AsType[runError](err); ok {
		return exitFailure
	}
	return exitUsage
}
