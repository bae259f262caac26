package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoKeygenArgs are the arguments of "repo keygen".
type repoKeygenArgs struct {
	out string // key file to write
}

func repoKeygenCmd(e *env) *cobra.Command {
	var a repoKeygenArgs
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Generate an ed25519 signing key into a file",
		Long: `Generate an ed25519 signing key and write it to FILE (PKCS#8 PEM, mode 0600).

The key can then replace a key of a repository with "repo rotate --key FILE",
for instance a key generated on an offline machine. keygen never overwrites
an existing file.`,
		Example: `  ocfupdate repo keygen --out targets-2.pem`,
		Args:    positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRepoKeygen(cmd.Context(), e, &a)
		},
	}
	cmd.Flags().StringVar(&a.out, "out", "", "key `FILE` to create (required)")
	markRequired(cmd, "out")
	return cmd
}

func runRepoKeygen(_ context.Context, e *env, a *repoKeygenArgs) error {
	k, err := tufrepo.GenerateKey()
	if err != nil {
		return err
	}
	if err := tufrepo.WriteKeyFile(a.out, k); err != nil {
		return err
	}
	out := struct {
		ID   string `json:"id"`
		File string `json:"file"`
	}{k.ID, a.out}
	return e.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "key %s written to %s\n", k.ID, a.out)
	})
}
