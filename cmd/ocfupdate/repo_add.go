package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoAddArgs are the arguments of "repo add".
type repoAddArgs struct {
	dir, file      string
	model, version string
	counter        int64
	name           string
	minRAM         int64 // bytes; 0: no requirement
}

func repoAddCmd(e *env) *cobra.Command {
	var a repoAddArgs
	cmd := &cobra.Command{
		Use:   "add DIR FILE --model M --version V [--min-ram SIZE]",
		Short: "Stage a package file for a device model and version",
		Long: `Copy FILE into the repository as the package for device model M (the dmno
devices report) at software version V, and stage it: devices see it after the
next "repo publish".

Each package gets a counter, which orders the packages of a model and must
increase: by default one above the model's highest, or --counter N (above the
highest). The target path is M/V/NAME, NAME being --name or FILE's base name.
M, V and NAME may use A-Z a-z 0-9 . _ ~ + - (at most 100, not starting with a dot).

--min-ram SIZE signs the RAM the new version needs to install and run into
the package's metadata ("min_ram", in bytes): a device with less memory
available refuses the package before downloading it (swupdateresult 2).
SIZE is a whole number of bytes, or with a unit KiB, MiB or GiB (512MiB).`,
		Example: `  ocfupdate repo add ./repo build/lamp.img --model lamp-1 --version 1.2.0
  ocfupdate repo add ./repo build/lamp.img --model lamp-1 --version 1.3.0 --min-ram 512MiB`,
		Args: positional("DIR", "FILE"),
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
	f.Var(sizeFlag{&a.minRAM}, "min-ram", "RAM the package needs to install and run: `SIZE` in bytes or with KiB, MiB, GiB (default: no requirement)")
	markRequired(cmd, "model", "version")
	return cmd
}

func runRepoAdd(_ context.Context, e *env, a *repoAddArgs) error {
	if a.counter < 0 {
		return usagef("--counter %d: want 1 or more (or 0 for the default)", a.counter)
	}
	if a.minRAM < 0 { // parseSize takes no sign; a guard for callers that set it directly
		return usagef("--min-ram %d: want a size of at least 0", a.minRAM)
	}
	// Checked here for a plain message; AddTarget reports it less directly.
	if fi, err := os.Stat(a.file); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", a.file)
	}
	t, err := tufrepo.AddTarget(a.dir, a.file, a.model, a.version, tufrepo.AddOptions{Counter: a.counter, Name: a.name, MinRAM: uint64(a.minRAM)})
	if err != nil {
		return err
	}
	return e.emit(toTargetJSON(t), func(w io.Writer) { targetsTable(w, []tufrepo.Target{t}) })
}

// formatRAM writes a min_ram as --min-ram reads it. A requirement beyond
// what parseSize reads (only a hand-edited repository has one) is written
// in bytes.
func formatRAM(n uint64) string {
	if n > math.MaxInt64 {
		return strconv.FormatUint(n, 10)
	}
	return formatSize(int64(n))
}
