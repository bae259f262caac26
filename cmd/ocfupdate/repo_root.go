package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoRootArgs are the arguments of "repo root".
type repoRootArgs struct {
	dir string
	out string // file to write; empty: stdout
}

func repoRootCmd(e *env) *cobra.Command {
	var a repoRootArgs
	cmd := &cobra.Command{
		Use:   "root DIR [--out FILE]",
		Short: "Print or write the root metadata devices start trusting",
		Long: `Print the repository's current root metadata (root.json), which devices ship
as their initial trusted root, or write it to FILE with --out (replacing FILE).
A device holding an older root follows the chain of root versions by itself.

The metadata is printed as the repository serves it, whatever --output says;
with --out, the summary line follows --output.`,
		Example: `  ocfupdate repo root ./repo --out /etc/ocfupdated/root.json`,
		Args:    positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoRoot(cmd.Context(), e, &a)
		},
	}
	cmd.Flags().StringVar(&a.out, "out", "", "write root.json to `FILE` instead of printing it")
	return cmd
}

func runRepoRoot(_ context.Context, e *env, a *repoRootArgs) error {
	data, err := tufrepo.TrustedRoot(a.dir)
	if err != nil {
		return err
	}
	if a.out == "" {
		if !bytes.HasSuffix(data, []byte("\n")) {
			data = append(data, '\n') // JSON ignores it; terminals need it
		}
		if _, err := e.stdout.Write(data); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	var root struct {
		Signed signedHeader `json:"signed"`
	}
	if err := json.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("read root of %s: %w", a.dir, err)
	}
	if err := writeFileAtomic(a.out, data, 0o644); err != nil {
		return err
	}
	out := struct {
		File    string `json:"file"`
		Version int64  `json:"version"`
	}{a.out, root.Signed.Version}
	return e.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "root version %d written to %s\n", root.Signed.Version, a.out)
	})
}

// writeFileAtomic replaces path with data through a synced temporary file
// in the same directory, so a reader never sees half a root.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
