package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoAddArgs are the arguments of "repo add".
type repoAddArgs struct {
	dir, file      string
	model, version string
	counter        int64
	name           string
}

func repoAddCmd(e *env) *cobra.Command {
	var a repoAddArgs
	cmd := &cobra.Command{
		Use:   "add DIR FILE --model M --version V",
		Short: "Stage a package file for a device model and version",
		Long: `Copy FILE into the repository as the package for device model M (the dmno
devices report) at software version V, and stage it: devices see it after the
next "repo publish".

Each package gets a counter, which orders the packages of a model and must
increase: by default one above the model's highest, or --counter N (above the
highest). The target path is M/V/NAME, NAME being --name or FILE's base name.
M, V and NAME may use A-Z a-z 0-9 . _ ~ + - (at most 100, not starting with a dot).`,
		Example: `  ocfupdate repo add ./repo build/lamp.img --model lamp-1 --version 1.2.0`,
		Args:    positional("DIR", "FILE"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir, a.file = pos[0], pos[1]
			return runRepoAdd(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.model, "model", "", "device `MODEL` (dmno) the package is for (required)")
	f.StringVar(&a.version, "version", "", "software `VERSION` the package installs (required)")
	f.Int64Var(&a.counter, "counter", 0, "package counter `N`, above the model's highest (default: highest + 1)")
	f.StringVar(&a.name, "name", "", "file `NAME` in the repository (default: FILE's base name)")
	markRequired(cmd, "model", "version")
	return cmd
}

func runRepoAdd(_ context.Context, e *env, a *repoAddArgs) error {
	if a.counter < 0 {
		return usagef("--counter %d: want 1 or more (or 0 for the default)", a.counter)
	}
	// Checked here for a plain message; AddTarget reports it less directly.
	if fi, err := os.Stat(a.file); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", a.file)
	}
	t, err := tufrepo.AddTarget(a.dir, a.file, a.model, a.version, tufrepo.AddOptions{Counter: a.counter, Name: a.name})
	if err != nil {
		return err
	}
	return e.emit(toTargetJSON(t), func(w io.Writer) { targetsTable(w, []tufrepo.Target{t}) })
}
