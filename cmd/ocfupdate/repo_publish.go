package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoPublishArgs are the arguments of "repo publish".
type repoPublishArgs struct {
	dir      string
	expiries tufrepo.Expiries
}

func repoPublishCmd(e *env) *cobra.Command {
	var a repoPublishArgs
	cmd := &cobra.Command{
		Use:   "publish DIR",
		Short: "Sign staged packages and new snapshot and timestamp versions",
		Long: `Sign the staged packages (or the published ones again when nothing is staged)
as a new targets version, then new snapshot and timestamp versions, and make
them current. Devices see the change at their next check.

Run it at least as often as the timestamp expires (1 day unless set by init),
from cron for instance: devices refuse expired metadata. --expires overrides
the repository's setting for this publish only. Publish needs the targets,
snapshot and timestamp keys in DIR/keys, not the root keys.`,
		Example: `  ocfupdate repo publish ./repo
  ocfupdate repo publish ./repo --expires timestamp=6h`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoPublish(cmd.Context(), e, &a)
		},
	}
	cmd.Flags().Var(expiryFlag(&a.expiries, tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp),
		"expires", "validity of a role's new signatures, e.g. timestamp=2d; repeatable")
	return cmd
}

// publishedRole is one row of publish's output.
type publishedRole struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
}

func runRepoPublish(_ context.Context, e *env, a *repoPublishArgs) error {
	res, err := tufrepo.Publish(a.dir, tufrepo.PublishOptions{Expiries: a.expiries})
	if err != nil {
		return err
	}
	rows := publishedRows(res)
	return e.emit(rows, func(w io.Writer) { publishedTable(w, rows) })
}

func publishedRows(res tufrepo.PublishResult) []publishedRole {
	return []publishedRole{
		{tufrepo.RoleTargets, res.TargetsVersion, res.TargetsExpires},
		{tufrepo.RoleSnapshot, res.SnapshotVersion, res.SnapshotExpires},
		{tufrepo.RoleTimestamp, res.TimestampVersion, res.TimestampExpires},
	}
}

func publishedTable(w io.Writer, rows []publishedRole) {
	fmt.Fprintln(w, "ROLE\tVERSION\tEXPIRES")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%s\n", r.Role, r.Version, timeText(r.Expires))
	}
}
