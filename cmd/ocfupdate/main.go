// Command ocfupdate is the operator's tool for OCF software updates
// (oic.r.softwareupdate): it finds devices and shows where their updates
// stand (discover, status, watch), updates one device or a fleet in waves
// (update, rollout), builds, signs and serves the TUF repository that
// devices fetch packages from ("ocfupdate repo ..."), and shows it all
// working on loopback (demo). The device side of every command is the
// importable package client.
//
//	ocfupdate [--output table|json] COMMAND [ARGS] [FLAGS]
//
// Every subcommand lives in its own file (repo_add.go, ...) as a
// constructor xxxCmd(env), its arguments xxxArgs and runXxx(ctx, env, args).
// Output goes to the env's stdout, errors to its stderr as one line
// "ocfupdate: ...", and the exit code says what kind of failure it was (see
// exitcodes.go and docs/cli.md). SIGINT and SIGTERM cancel the command's
// context; long-running commands (serve) then stop cleanly and exit 0.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop() // os.Exit skips deferred calls
	os.Exit(code)
}
