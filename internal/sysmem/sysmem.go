// Package sysmem tells how much memory the system can give a new program:
// MemAvailable of Linux's /proc/meminfo, the kernel's own estimate of the
// memory available for starting new applications without swapping (free
// memory plus the page cache and reclaimable slabs it could drop). The
// device compares it with the RAM a package says it needs (the min_ram of
// its signed TUF metadata) before downloading anything: too little is
// swupdateresult 2.
//
// An error from Available means "unknown" (not Linux, /proc not mounted, a
// kernel older than 3.14 without MemAvailable, a text that does not
// parse). Callers must then let the update go ahead: a requirement that
// cannot be checked is not a reason to leave a device on old software.
package sysmem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// MeminfoPath is the file Available reads.
const MeminfoPath = "/proc/meminfo"

// maxMeminfo bounds what is read: /proc/meminfo is about 1.5 KiB; anything
// far larger is not meminfo.
const maxMeminfo = 64 << 10

// AvailableFunc returns the bytes of memory available to a new program.
// Available is the real one; tests inject fakes.
type AvailableFunc func() (uint64, error)

// Errors for a meminfo text that gives no answer; test with errors.Is.
var (
	// ErrNoField: the text has no MemAvailable line.
	ErrNoField = errors.New("no MemAvailable in meminfo")
	// ErrMalformed: the MemAvailable line, or the text, is not what the
	// kernel writes.
	ErrMalformed = errors.New("malformed meminfo")
)

// Available returns MemAvailable from /proc/meminfo, in bytes.
func Available() (uint64, error) { return ReadMeminfo(MeminfoPath) }

// ReadMeminfo returns MemAvailable from the meminfo file at path, in bytes.
func ReadMeminfo(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("available memory: %w", err)
	}
	defer f.Close()
	n, err := ParseMeminfo(f)
	if err != nil {
		return 0, fmt.Errorf("available memory: %s: %w", path, err)
	}
	return n, nil
}

// ParseMeminfo returns the MemAvailable of a /proc/meminfo text, in bytes.
// The kernel writes it as "MemAvailable:   24236492 kB", kB meaning KiB.
// Other lines are not looked at beyond splitting them at the colon, so
// fields added by future kernels do not matter; a MemAvailable line that
// is not exactly a decimal number and "kB", or that appears twice, makes
// the text malformed rather than guessed at.
func ParseMeminfo(r io.Reader) (uint64, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxMeminfo+1))
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	if len(data) > maxMeminfo {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrMalformed, maxMeminfo)
	}
	var (
		avail uint64
		found bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxMeminfo)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemAvailable" {
			continue
		}
		if found {
			return 0, fmt.Errorf("%w: MemAvailable appears twice", ErrMalformed)
		}
		if avail, err = parseKB(rest); err != nil {
			return 0, err
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !found {
		return 0, ErrNoField
	}
	return avail, nil
}

// parseKB parses the value of a meminfo line, "   24236492 kB", to bytes.
func parseKB(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("%w: MemAvailable %q: want a number of kB", ErrMalformed, strings.TrimSpace(s))
	}
	// ParseUint takes no sign, so "-1" and "+1" are malformed too.
	kb, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || kb > math.MaxUint64/1024 {
		return 0, fmt.Errorf("%w: MemAvailable %q kB: not a number of kB that fits 64 bits", ErrMalformed, f[0])
	}
	return kb * 1024, nil
}
