package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/ocfupdate/ocfupdate/client"
)

// liveView shows changing rows (one per device at work) and a footer below
// them. On a terminal it redraws them in place below the permanent lines,
// each cut to the terminal's width (a line that wrapped would take two
// screen lines, and clearing the block would leave half of it behind);
// elsewhere rows are not drawn at all and only permanent lines are
// printed, so logs and CI output stay readable. Safe for concurrent use.
type liveView struct {
	w     io.Writer
	tty   bool
	width func() int // columns of the terminal; 0 when unknown

	mu       sync.Mutex
	keys     []string // sorted
	rows     map[string]string
	footer   string
	drawn    int  // lines of the block currently on screen
	dirty    bool // rows changed since the last draw
	lastDraw time.Time

	stop chan struct{} // ends the redraw ticker
	done chan struct{}
}

// redrawEvery bounds redraws: a fleet reports progress faster than anyone
// can read.
const redrawEvery = 100 * time.Millisecond

// newLiveView returns a view; on a terminal a ticker redraws changed rows
// that a throttled setRow did not draw. Close it when done.
func newLiveView(w io.Writer, tty bool) *liveView {
	v := &liveView{w: w, tty: tty, width: terminalWidth(w), rows: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	if !tty {
		close(v.done)
		return v
	}
	go func() {
		defer close(v.done)
		t := time.NewTicker(redrawEvery)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.mu.Lock()
				if v.dirty {
					v.redrawLocked()
				}
				v.mu.Unlock()
			}
		}
	}()
	return v
}

// setRow adds or changes the row for key. Rows are drawn in key order, so
// that a row keeps its place while others come and go.
func (v *liveView) setRow(key, text string) {
	if !v.tty {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.rows[key]; !ok {
		i, _ := slices.BinarySearch(v.keys, key)
		v.keys = slices.Insert(v.keys, i, key)
	}
	v.rows[key] = text
	v.dirty = true
	if time.Since(v.lastDraw) >= redrawEvery {
		v.redrawLocked()
	}
}

// setFooter sets the line drawn below the rows; "" removes it.
func (v *liveView) setFooter(text string) {
	if !v.tty {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if text == v.footer {
		return
	}
	v.footer = text
	v.dirty = true
	if text == "" || time.Since(v.lastDraw) >= redrawEvery {
		v.redrawLocked()
	}
}

// removeRow drops key's row.
func (v *liveView) removeRow(key string) {
	if !v.tty {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.rows[key]; !ok {
		return
	}
	delete(v.rows, key)
	for i, k := range v.keys {
		if k == key {
			v.keys = append(v.keys[:i], v.keys[i+1:]...)
			break
		}
	}
	v.redrawLocked()
}

// println prints a permanent line (above the rows on a terminal).
func (v *liveView) println(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		fmt.Fprintln(v.w, line)
		return
	}
	v.clearLocked()
	fmt.Fprintln(v.w, line)
	v.redrawLocked()
}

// close stops the ticker and draws the rows as they are now. The view
// must not be used afterwards.
func (v *liveView) close() {
	if !v.tty {
		return
	}
	close(v.stop)
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	v.redrawLocked()
}

// clearLocked erases the block: up one line and clear it, per line.
func (v *liveView) clearLocked() {
	if v.drawn > 0 {
		fmt.Fprint(v.w, strings.Repeat("\x1b[1A\x1b[2K", v.drawn))
		v.drawn = 0
	}
}

func (v *liveView) redrawLocked() {
	v.clearLocked()
	lines := make([]string, 0, len(v.keys)+1)
	for _, k := range v.keys {
		lines = append(lines, v.rows[k])
	}
	if v.footer != "" {
		lines = append(lines, v.footer)
	}
	// One column short of the width: a terminal that wraps on the last
	// column would otherwise push the cursor a line down.
	cols := v.width() - 1
	var b strings.Builder
	for _, l := range lines {
		if cols > 0 {
			l = fit(l, cols)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	fmt.Fprint(v.w, b.String())
	v.drawn = len(lines)
	v.dirty = false
	v.lastDraw = time.Now()
}

// terminalWidth returns a function that reads the width of the terminal w
// is, at each call so that a resized window is followed; 0 when w is no
// terminal or the width cannot be read.
func terminalWidth(w io.Writer) func() int {
	f, ok := w.(*os.File)
	if !ok {
		return func() int { return 0 }
	}
	return func() int {
		cols, _, err := term.GetSize(int(f.Fd()))
		if err != nil {
			return 0
		}
		return cols
	}
}

// fit cuts s to at most cols characters, ending in … when it cut. Rows
// are mostly ASCII with a few one-column symbols, so characters stand for
// columns.
func fit(s string, cols int) string {
	if utf8.RuneCountInString(s) <= cols {
		return s
	}
	r := []rune(s)
	return string(r[:cols-1]) + "…"
}

// bar draws a progress bar of width cells for pct (0–100).
func bar(pct, width int) string {
	n := pct * width / 100
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// deviceRow is a device's live row: name, endpoint, state, a bar while a
// transfer runs, result once it ended, and the detail.
func deviceRow(name, endpoint string, s client.Status, err error) string {
	if err != nil {
		return fmt.Sprintf("%-16s %-26s unreachable: %s", trunc(name, 16), endpoint, oneLine(err.Error()))
	}
	state := s.State
	if s.Action != client.ActionIdle {
		state += " (" + s.Action + ")"
	}
	mid := fmt.Sprintf("%-24s", "")
	if p := s.Percent(); p >= 0 {
		mid = fmt.Sprintf("%s %3d%%", bar(p, 18), p)
	} else if s.Finished() {
		mid = fmt.Sprintf("%-24s", "result "+resultCell(&s))
	}
	return fmt.Sprintf("%-16s %-26s %-20s %s  %s", trunc(name, 16), endpoint, state, mid, s.Detail)
}

// plainLine is a status change as one line for logs.
func plainLine(endpoint string, s client.Status) string {
	l := fmt.Sprintf("%s %s state=%s action=%s result=%d", time.Now().Format("15:04:05"), endpoint, s.State, s.Action, s.Result)
	if p := s.Percent(); p >= 0 {
		l += fmt.Sprintf(" progress=%d%%", p)
	}
	if s.NV != "" {
		l += " nv=" + s.NV
	}
	return l + fmt.Sprintf(" detail=%q", s.Detail)
}

// worthALine reports whether cur differs from prev enough for a plain
// line: anything but progress, or progress crossing a quarter.
func worthALine(prev *client.Status, cur client.Status) bool {
	if prev == nil {
		return true
	}
	if prev.State != cur.State || prev.Action != cur.Action || prev.Result != cur.Result ||
		prev.Detail != cur.Detail || prev.NV != cur.NV {
		return true
	}
	return cur.Percent()/25 != prev.Percent()/25
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
