package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// repoCmd groups the repository commands.
func repoCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Build, sign and serve a TUF repository of update packages",
		Long: `Build, sign and serve a TUF repository of update packages.

A repository is one directory (DIR): signing keys in DIR/keys, packages added
but not yet published in DIR/staged, and what devices fetch in DIR/repository.
The URL "repo serve" prints is the repository's base URL, the purl to give
devices. Typical use:

  ocfupdate repo init DIR
  ocfupdate repo add DIR firmware.bin --model lamp-1 --version 1.2.0
  ocfupdate repo publish DIR
  ocfupdate repo root DIR --out root.json     # devices' initial trusted root
  ocfupdate repo serve DIR --https :8443

Publish at least as often as the timestamp expires (1 day by default):
devices refuse expired metadata.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(
		repoKeygenCmd(e),
		repoInitCmd(e),
		repoAddCmd(e),
		repoPublishCmd(e),
		repoRotateCmd(e),
		repoListCmd(e),
		repoRootCmd(e),
		repoServeCmd(e),
	)
	return cmd
}

// roleInfo describes a top-level role as the repository currently has it.
type roleInfo struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Threshold int       `json:"threshold"`
	Keys      []string  `json:"keys"` // TUF key IDs
}

// describeRoles reads the current metadata of dir (root.json and the
// unversioned copies of the others, which the repository keeps for tools).
// Signatures are not checked: this is for showing, not for trusting.
func describeRoles(dir string) ([]roleInfo, error) {
	rootData, err := tufrepo.TrustedRoot(dir)
	if err != nil {
		return nil, err
	}
	var root struct {
		Signed struct {
			signedHeader
			Roles map[string]struct {
				KeyIDs    []string `json:"keyids"`
				Threshold int      `json:"threshold"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(rootData, &root); err != nil {
		return nil, fmt.Errorf("read root of %s: %w", dir, err)
	}
	out := make([]roleInfo, 0, len(allRoles))
	for _, role := range allRoles {
		r := root.Signed.Roles[role]
		info := roleInfo{Role: role, Threshold: r.Threshold, Keys: r.KeyIDs}
		hdr := root.Signed.signedHeader
		if role != tufrepo.RoleRoot {
			if hdr, err = readHeader(dir, role); err != nil {
				return nil, err
			}
		}
		info.Version, info.Expires = hdr.Version, hdr.Expires
		out = append(out, info)
	}
	return out, nil
}

// signedHeader is what every TUF role's "signed" object starts with.
type signedHeader struct {
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
}

// readHeader reads version and expiry of the current metadata of role.
func readHeader(dir, role string) (signedHeader, error) {
	p := filepath.Join(dir, "repository", tufrepo.MetadataPath, role+".json")
	data, err := os.ReadFile(p)
	if err != nil {
		return signedHeader{}, fmt.Errorf("read %s metadata: %w", role, err)
	}
	var m struct {
		Signed signedHeader `json:"signed"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return signedHeader{}, fmt.Errorf("read %s: %w", p, err)
	}
	return m.Signed, nil
}

// rolesTable writes roles as a table; key IDs are shortened to the 16
// digits the key files in DIR/keys are named by.
func rolesTable(w io.Writer, roles []roleInfo) {
	fmt.Fprintln(w, "ROLE\tVERSION\tEXPIRES\tTHRESHOLD\tKEYS")
	for _, r := range roles {
		short := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			short[i] = shortKeyID(k)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\n", r.Role, r.Version, timeText(r.Expires), r.Threshold, strings.Join(short, ","))
	}
}

func shortKeyID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// targetJSON is a package as list and add print it with --output json.
type targetJSON struct {
	Path      string            `json:"path"`
	Model     string            `json:"model"`
	Version   string            `json:"version"`
	Counter   int64             `json:"counter"`
	Length    int64             `json:"length"`
	MinRAM    uint64            `json:"min_ram"` // bytes; 0: no requirement
	Hashes    map[string]string `json:"hashes"`
	Published bool              `json:"published"`
}

func toTargetJSON(t tufrepo.Target) targetJSON {
	return targetJSON{Path: t.Path, Model: t.Model, Version: t.Version, Counter: t.Counter,
		Length: t.Length, MinRAM: t.MinRAM, Hashes: t.Hashes, Published: t.Published}
}

// targetsTable writes packages as a table.
func targetsTable(w io.Writer, targets []tufrepo.Target) {
	fmt.Fprintln(w, "MODEL\tVERSION\tCOUNTER\tBYTES\tMIN-RAM\tSTATE\tPATH")
	for _, t := range targets {
		state := "staged"
		if t.Published {
			state = "published"
		}
		model, version, counter := dash(t.Model), dash(t.Version), "-"
		if t.Counter > 0 {
			counter = strconv.FormatInt(t.Counter, 10)
		}
		// MIN-RAM in --min-ram's syntax, "-" for no requirement.
		minRAM := "-"
		if t.MinRAM > 0 {
			minRAM = formatRAM(t.MinRAM)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", model, version, counter, t.Length, minRAM, state, t.Path)
	}
}

// dash shows an empty cell (a target that is not a package) as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
