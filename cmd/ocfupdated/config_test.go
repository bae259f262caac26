package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigFileAndFlags: the file overrides the defaults, flags given on
// the command line override the file, and bad files are clear errors.
func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"model": "from-file", "version": "2.0.0", "fetch_timeout": "45s", "multicast": false}`)
	o, err := parseOptions([]string{"--config", file, "--version", "3.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Model != "from-file" || o.Version != "3.0.0" || o.FetchTimeout.Duration != 45*time.Second || o.Multicast {
		t.Errorf("options %+v", o)
	}
	if o.CoAP != ":5683" {
		t.Errorf("default coap %q lost", o.CoAP)
	}
	for _, bad := range []struct{ file, want string }{
		{`{"modle": "x"}`, "unknown field"},
		{`{"fetch_timeout": 30}`, "duration"},
		{`{"fetch_timeout": "soon"}`, "duration"},
		{`not json`, "invalid character"},
	} {
		write(bad.file)
		if _, err := parseOptions([]string{"--config", file}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err %v, want %q", bad.file, err, bad.want)
		}
	}
	if _, err := parseOptions([]string{"--config", filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("missing config file accepted")
	}
}
