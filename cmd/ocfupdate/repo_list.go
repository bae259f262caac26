package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoListArgs are the arguments of "repo list".
type repoListArgs struct {
	dir string
}

func repoListCmd(e *env) *cobra.Command {
	var a repoListArgs
	cmd := &cobra.Command{
		Use:   "list DIR",
		Short: "List the packages, published and staged",
		Long: `List the repository's packages, published and staged, ordered by model and
counter. With --output json each package also has its length and hashes.`,
		Example: `  ocfupdate repo list ./repo
  ocfupdate repo list ./repo -o json`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoList(cmd.Context(), e, &a)
		},
	}
	return cmd
}

func runRepoList(_ context.Context, e *env, a *repoListArgs) error {
	targets, err := tufrepo.ListTargets(a.dir)
	if err != nil {
		return err
	}
	out := make([]targetJSON, 0, len(targets)) // [] rather than null when empty
	for _, t := range targets {
		out = append(out, toTargetJSON(t))
	}
	return e.emit(out, func(w io.Writer) { targetsTable(w, targets) })
}
