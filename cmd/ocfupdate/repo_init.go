package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoInitArgs are the arguments of "repo init".
type repoInitArgs struct {
	dir        string
	thresholds tufrepo.Thresholds
	expiries   tufrepo.Expiries
}

func repoInitCmd(e *env) *cobra.Command {
	var a repoInitArgs
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a repository: keys and signed metadata for every role",
		Long: `Create a repository in DIR (created if needed): signing keys for the root,
targets, snapshot and timestamp roles in DIR/keys, root version 1 and an empty,
published targets set, so the repository can be served at once.

--threshold role=N makes N keys for the role and requires N signatures.
--expires role=DURATION sets how long each role's signatures stay valid; the
values are stored in DIR/repo.json and used by every later publish. Defaults:
root 365d, targets 90d, snapshot 7d, timestamp 1d. Durations are Go durations
("36h") or whole days ("90d", "1d12h").`,
		Example: `  ocfupdate repo init ./repo
  ocfupdate repo init ./repo --threshold root=2 --expires timestamp=2d,snapshot=14d`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoInit(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.Var(thresholdFlag(&a.thresholds), "threshold", "signatures (and keys) a role needs, e.g. root=2; repeatable")
	f.Var(expiryFlag(&a.expiries, allRoles...), "expires", "validity of a role's signatures, e.g. timestamp=2d; repeatable")
	return cmd
}

func runRepoInit(_ context.Context, e *env, a *repoInitArgs) error {
	if err := tufrepo.Init(a.dir, tufrepo.InitOptions{Thresholds: a.thresholds, Expiries: a.expiries}); err != nil {
		return err
	}
	roles, err := describeRoles(a.dir)
	if err != nil {
		return err
	}
	return e.emit(roles, func(w io.Writer) { rolesTable(w, roles) })
}
