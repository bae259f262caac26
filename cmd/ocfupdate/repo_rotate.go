package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoRotateArgs are the arguments of "repo rotate".
type repoRotateArgs struct {
	dir      string
	role     string
	keyFile  string // replacement key; empty: generate one
	oldKey   string // ID or unique prefix of the key to replace
	expiries tufrepo.Expiries
}

func repoRotateCmd(e *env) *cobra.Command {
	var a repoRotateArgs
	cmd := &cobra.Command{
		Use:   "rotate DIR --role ROLE",
		Short: "Replace a signing key of a role with a new root version",
		Long: `Replace one key of ROLE (root, targets, snapshot or timestamp): write a new
root version that revokes the old key and lists the new one, signed by the root
keys of both the old and the new root so that devices follow the chain, then
re-sign the published targets, snapshot and timestamp under it. Staged packages
stay staged. The old private key moves to DIR/keys/retired; destroy it once no
device needs it.

--key FILE uses a key made by "repo keygen" (the file is copied into DIR/keys);
without it a new key is generated. --old-key names the key to replace by its ID
or a unique prefix of it (as "repo init" shows them); it may be left out when
the role has one key.`,
		Example: `  ocfupdate repo rotate ./repo --role timestamp
  ocfupdate repo keygen --out targets-2.pem
  ocfupdate repo rotate ./repo --role targets --key targets-2.pem --old-key 1f3a`,
		Args: positional("DIR"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.dir = pos[0]
			return runRepoRotate(cmd.Context(), e, &a)
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.role, "role", "", "`ROLE` whose key is replaced: root, targets, snapshot or timestamp (required)")
	f.StringVar(&a.keyFile, "key", "", "replacement key `FILE` from keygen (default: generate a key)")
	f.StringVar(&a.oldKey, "old-key", "", "`ID` or unique ID prefix of the key to replace (default: the role's only key)")
	f.Var(expiryFlag(&a.expiries, allRoles...), "expires", "validity of the new signatures, e.g. root=365d; repeatable")
	markRequired(cmd, "role")
	return cmd
}

// rotateJSON is rotate's result with --output json.
type rotateJSON struct {
	Role        string     `json:"role"`
	OldKey      string     `json:"old_key"`
	NewKey      string     `json:"new_key"`
	RootVersion int64      `json:"root_version"`
	Roles       []roleInfo `json:"roles"`
}

func runRepoRotate(_ context.Context, e *env, a *repoRotateArgs) error {
	if !slices.Contains(allRoles, a.role) {
		return usagef("--role %q: want one of %s", a.role, strings.Join(allRoles, ", "))
	}
	before, err := describeRoles(a.dir)
	if err != nil {
		return err
	}
	oldID, err := resolveKeyID(before, a.role, a.oldKey)
	if err != nil {
		return err
	}
	opts := tufrepo.RotateOptions{OldKeyID: oldID, Expiries: a.expiries}
	if a.keyFile != "" {
		if opts.NewKey, err = tufrepo.ReadKeyFile(a.keyFile); err != nil {
			return err
		}
	}
	res, err := tufrepo.RotateKey(a.dir, a.role, opts)
	if err != nil {
		return err
	}
	after, err := describeRoles(a.dir)
	if err != nil {
		return err
	}
	out := rotateJSON{Role: res.Role, OldKey: res.OldKeyID, NewKey: res.NewKeyID, RootVersion: res.RootVersion, Roles: after}
	return e.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "replaced %s key %s with %s in root version %d; retired private keys are in %s\n",
			res.Role, shortKeyID(res.OldKeyID), shortKeyID(res.NewKeyID), res.RootVersion, filepath.Join(a.dir, "keys", "retired"))
		rolesTable(w, after)
	})
}

// resolveKeyID finds the key of role that prefix names. An empty prefix
// names the role's only key.
func resolveKeyID(roles []roleInfo, role, prefix string) (string, error) {
	var keys []string
	for _, r := range roles {
		if r.Role == role {
			keys = r.Keys
		}
	}
	short := func() string {
		s := make([]string, len(keys))
		for i, k := range keys {
			s[i] = shortKeyID(k)
		}
		return strings.Join(s, ", ")
	}
	if prefix == "" {
		if len(keys) != 1 {
			return "", fmt.Errorf("role %s has %d keys (%s): say which to replace with --old-key", role, len(keys), short())
		}
		return keys[0], nil
	}
	var match []string
	for _, k := range keys {
		if strings.HasPrefix(k, strings.ToLower(prefix)) {
			match = append(match, k)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no %s key has an ID starting with %q (its keys: %s): %w", role, prefix, short(), tufrepo.ErrNotFound)
	case 1:
		return match[0], nil
	}
	return "", errors.New("--old-key " + prefix + " names several " + role + " keys; give more digits")
}
