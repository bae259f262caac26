package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo/tufrepotest"
)

func TestHelpListsCommands(t *testing.T) {
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	tests := []struct {
		args []string
		cmds map[string]string // name → one-line description
	}{
		{[]string{"--help"}, map[string]string{"repo": repoCmd(e).Short}},
		{[]string{}, map[string]string{"repo": repoCmd(e).Short}},
		{[]string{"repo", "--help"}, subcommands(repoCmd(e).Commands())},
		{[]string{"repo"}, subcommands(repoCmd(e).Commands())},
		{[]string{"help", "repo"}, subcommands(repoCmd(e).Commands())},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if len(tt.cmds) < 1 {
				t.Fatal("no commands to look for")
			}
			for name, short := range tt.cmds {
				if short == "" {
					t.Errorf("command %s has no one-line description", name)
				}
				line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +` + regexp.QuoteMeta(short) + `$`)
				if !line.MatchString(r.stdout) {
					t.Errorf("help does not list %q with %q:\n%s", name, short, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "completion") {
				t.Errorf("help lists a completion command:\n%s", r.stdout)
			}
		})
	}
}

// subcommands maps the names of cmds to their one-line descriptions.
func subcommands(cmds []*cobra.Command) map[string]string {
	m := map[string]string{}
	for _, c := range cmds {
		m[c.Name()] = c.Short
	}
	return m
}

func TestExitCodeMapping(t *testing.T) {
	plain := errors.New("x")
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{plain, exitUsage}, // cobra's own parse errors carry no mark
		{runError{plain}, exitFailure},
		{runError{usagef("bad flag")}, exitUsage},
		{fmt.Errorf("wrapped: %w", runError{fmt.Errorf("deep: %w", plain)}), exitFailure},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	repo := newTestRepo(t)
	pkg, _ := tufrepotest.PackageFile(t, "fw2.bin", 10)
	existingKey := filepath.Join(t.TempDir(), "k.pem")
	mustRun(t, "repo", "keygen", "--out", existingKey)
	notRepo := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		msg  string // the error line contains it
	}{
		{"unknown command", []string{"bogus"}, exitUsage, `unknown command "bogus" for "ocfupdate"`},
		{"misspelt command", []string{"rpo"}, exitUsage, "did you mean repo?"},
		{"unknown subcommand", []string{"repo", "lst", repo.dir}, exitUsage, `unknown command "lst" for "ocfupdate repo"; did you mean list?`},
		{"unknown flag", []string{"repo", "list", repo.dir, "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"bad output format", []string{"-o", "yaml", "repo", "list", repo.dir}, exitUsage, `invalid argument "yaml" for "-o, --output" flag: want table or json`},
		{"missing DIR", []string{"repo", "list"}, exitUsage, "missing DIR"},
		{"missing FILE", []string{"repo", "add", repo.dir, "--model", "m", "--version", "1"}, exitUsage, "missing FILE"},
		{"extra argument", []string{"repo", "publish", repo.dir, "more"}, exitUsage, `unexpected argument "more"`},
		{"missing --model", []string{"repo", "add", repo.dir, pkg, "--version", "2"}, exitUsage, `required flag(s) "model" not set`},
		{"missing --out", []string{"repo", "keygen"}, exitUsage, `required flag(s) "out" not set`},
		{"missing --role", []string{"repo", "rotate", repo.dir}, exitUsage, `required flag(s) "role" not set`},
		{"bad duration", []string{"repo", "init", t.TempDir(), "--expires", "timestamp=abc"}, exitUsage, `bad duration "abc"`},
		{"negative duration", []string{"repo", "publish", repo.dir, "--expires", "timestamp=-1h"}, exitUsage, "expiry of timestamp must be positive"},
		{"unknown role in threshold", []string{"repo", "init", t.TempDir(), "--threshold", "admin=2"}, exitUsage, `unknown role "admin"`},
		{"bad threshold", []string{"repo", "init", t.TempDir(), "--threshold", "root=0"}, exitUsage, "not a whole number of at least 1"},
		{"root expiry in publish", []string{"repo", "publish", repo.dir, "--expires", "root=1d"}, exitUsage, `unknown role "root"`},
		{"unknown role in rotate", []string{"repo", "rotate", repo.dir, "--role", "admin"}, exitUsage, `--role "admin": want one of`},
		{"negative counter", []string{"repo", "add", repo.dir, pkg, "--model", "m", "--version", "1", "--counter", "-1"}, exitUsage, "--counter -1"},
		{"nothing to serve", []string{"repo", "serve", repo.dir, "--https", ""}, exitUsage, "nothing to serve"},
		{"cert without key", []string{"repo", "serve", repo.dir, "--tls-cert", "c.pem"}, exitUsage, "--tls-cert and --tls-key go together"},
		{"bad block size", []string{"repo", "serve", repo.dir, "--block-size", "1000"}, exitUsage, "--block-size 1000"},

		{"non-existent file", []string{"repo", "add", repo.dir, filepath.Join(notRepo, "nope.bin"), "--model", "m", "--version", "1"}, exitFailure, "nope.bin: no such file or directory"},
		{"directory as file", []string{"repo", "add", repo.dir, notRepo, "--model", "m", "--version", "1"}, exitFailure, "is not a regular file"},
		{"not a repository", []string{"repo", "list", notRepo}, exitFailure, "not a TUF repository"},
		{"serve not a repository", []string{"repo", "serve", notRepo, "--https", "127.0.0.1:0"}, exitFailure, "not a TUF repository"},
		{"init twice", []string{"repo", "init", repo.dir}, exitFailure, "already exists"},
		{"version twice", []string{"repo", "add", repo.dir, pkg, "--model", "lamp-1", "--version", "1.0.0"}, exitFailure, "already exists"},
		{"invalid model", []string{"repo", "add", repo.dir, pkg, "--model", "a/b", "--version", "1"}, exitFailure, `model "a/b": invalid argument`},
		{"counter not above", []string{"repo", "add", repo.dir, pkg, "--model", "lamp-1", "--version", "2", "--counter", "1"}, exitFailure, "counter 1 not above 1"},
		{"keygen over a file", []string{"repo", "keygen", "--out", existingKey}, exitFailure, "already exists"},
		{"unknown old key", []string{"repo", "rotate", repo.dir, "--role", "targets", "--old-key", "zz"}, exitFailure, `no targets key has an ID starting with "zz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ocfupdate: ") || !strings.HasSuffix(r.stderr, "\n") {
				t.Fatalf("stderr %q, want one line starting with \"ocfupdate: \"", r.stderr)
			}
			if !strings.Contains(lines[0], tt.msg) {
				t.Errorf("stderr %q does not say %q", lines[0], tt.msg)
			}
			if hint := "--help')"; (tt.code == exitUsage) != strings.HasSuffix(lines[0], hint) {
				t.Errorf("stderr %q: a usage error, and only one, ends with a pointer to --help", lines[0])
			}
		})
	}
	// Nothing above may have changed the repository.
	if got := mustRun(t, "-o", "json", "repo", "list", repo.dir); strings.Count(got, `"path"`) != 1 {
		t.Errorf("repository changed by failing commands: %s", got)
	}
	if _, err := os.Stat(filepath.Join(notRepo, "repository")); err == nil {
		t.Error("a failing command created a repository")
	}
}

func TestOneLine(t *testing.T) {
	tests := map[string]string{
		"a":                   "a",
		"a\nb":                "a; b",
		"unknown\n\nDid\n\tx": "unknown; Did; x",
		"a\r\nb\n":            "a; b",
	}
	for in, want := range tests {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
