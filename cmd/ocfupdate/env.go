package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"
)

// env is what a command touches besides its arguments. Tests inject it;
// main gives it the process's stdout and stderr.
type env struct {
	stdout io.Writer
	stderr io.Writer
	output outputFormat // the global --output flag
}

// outputFormat is the value of --output.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "table|json" }

func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(s); v {
	case formatTable, formatJSON:
		*f = v
		return nil
	}
	return fmt.Errorf("want table or json")
}

// emit prints a command's result: v as indented JSON with --output json,
// otherwise what table writes, aligned in columns by a tabwriter (cells
// separated by tabs).
func (e *env) emit(v any, table func(w io.Writer)) error {
	if e.output == formatJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "<DEVICE-DIR>" stays readable: this is not HTML
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// timeText is how tables show times: UTC, to the second, as TUF writes them.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// lockedWriter serialises writes from several goroutines (servers report
// errors from their own goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
