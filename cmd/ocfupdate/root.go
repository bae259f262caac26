package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// run executes the command line args and returns the process exit code.
// Output goes to stdout, the one-line error (if any) to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, output: formatTable}
	root := newRootCmd(e)
	if args == nil {
		args = []string{} // cobra falls back to os.Args for nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	msg := oneLine(err.Error())
	if code == exitUsage && cmd != nil {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	fmt.Fprintf(stderr, "ocfupdate: %s\n", msg)
	return code
}

// newRootCmd builds the whole command tree around e. It holds no package
// state, so tests run commands side by side.
func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ocfupdate",
		Short: "Operate OCF software updates: package repositories, devices, rollouts",
		Long: `ocfupdate is the operator's tool for OCF software updates (oic.r.softwareupdate).

Start with "ocfupdate demo": a repository, devices and a rollout on loopback.

"ocfupdate discover", "status" and "watch" show devices and where their
updates stand; "update" updates one device, "rollout" a fleet in waves.
"ocfupdate repo" builds, signs and serves the TUF repository of packages that
devices fetch their updates from. "ocfupdate pki" makes the certificates and
pre-shared keys devices and operators authenticate each other with (CoAPs).

Exit codes: 0 success, 1 failure, 2 usage error, 3 rollout halted, 4
interrupted (see docs/cli.md).`,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRunE,
		SilenceErrors: true, // run prints the one-line error itself
		SilenceUsage:  true,
		// A completion script is not worth a command in every listing.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().VarP(&e.output, "output", "o", "output format: table or json")

	root.AddCommand(
		demoCmd(e),
		discoverCmd(e),
		statusCmd(e),
		watchCmd(e),
		updateCmd(e),
		rolloutCmd(e),
		repoCmd(e),
		pkiCmd(e),
	)
	wrapRunErrors(root)
	return root
}

// groupRunE is the RunE of commands that only group subcommands: without
// arguments it shows the help, otherwise it reports the unknown subcommand
// as a usage error (cobra would show the help and exit 0 for a nested one).
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its root applies
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError{errors.New(msg)}
}

// wrapRunErrors marks every error returned by a RunE in the tree as a
// runError, which tells them apart from cobra's own parse errors.
func wrapRunErrors(c *cobra.Command) {
	if orig := c.RunE; orig != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return runError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapRunErrors(sub)
	}
}

// positional returns an Args validator for exactly the named positional
// arguments, with messages that name what is missing.
func positional(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usagef("missing %s", strings.Join(names[len(args):], " "))
		case len(args) > len(names):
			return usagef("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// markRequired marks flags of cmd as required; cobra reports missing ones.
func markRequired(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.MarkFlagRequired(n); err != nil {
			panic(fmt.Sprintf("markRequired %s: %v", n, err)) // a typo in a flag name: a bug caught by any test
		}
	}
}

// oneLine folds a multi-line error message (errors.Join, cobra's
// suggestions) into one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}
