package sysmem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    uint64
		wantErr error // nil: success
	}{
		{"kernel 6.8", readFile(t, "meminfo-6.8.txt"), 2143216 * 1024, nil},
		{"kernel 3.10: no MemAvailable", readFile(t, "meminfo-3.10.txt"), 0, ErrNoField},
		{"only the field", "MemAvailable: 1 kB\n", 1024, nil},
		{"no trailing newline", "MemTotal: 8 kB\nMemAvailable: 4 kB", 4096, nil},
		{"CRLF line ends", "MemTotal: 8 kB\r\nMemAvailable: 4 kB\r\n", 4096, nil},
		{"tabs", "MemAvailable:\t7\tkB\n", 7 * 1024, nil},
		{"zero", "MemAvailable: 0 kB\n", 0, nil},
		{"leading zeros", "MemAvailable: 0010 kB\n", 10 * 1024, nil},
		{"largest that fits", fmt.Sprintf("MemAvailable: %d kB\n", uint64(1<<54-1)), (1<<54 - 1) * 1024, nil},
		{"unknown fields around it", "Zswap: 0 kB\nMemAvailable: 2 kB\nFutureThing: x y z\n", 2048, nil},
		{"a lookalike key is not the field", "MemAvailableX: 2 kB\n MemAvailable: 3 kB\n", 0, ErrNoField},
		{"empty", "", 0, ErrNoField},
		{"binary garbage", "\x00\xff\xfe:\x01", 0, ErrNoField},
		{"no unit", "MemAvailable: 2048\n", 0, ErrMalformed},
		{"other unit", "MemAvailable: 2 MB\n", 0, ErrMalformed},
		{"no value", "MemAvailable:\n", 0, ErrMalformed},
		{"negative", "MemAvailable: -5 kB\n", 0, ErrMalformed},
		{"plus sign", "MemAvailable: +5 kB\n", 0, ErrMalformed},
		{"decimal point", "MemAvailable: 5.5 kB\n", 0, ErrMalformed},
		{"hex", "MemAvailable: 0x10 kB\n", 0, ErrMalformed},
		{"underscores", "MemAvailable: 1_000 kB\n", 0, ErrMalformed},
		{"extra words", "MemAvailable: 5 kB more\n", 0, ErrMalformed},
		{"overflows 64 bits in kB", "MemAvailable: 18446744073709551616 kB\n", 0, ErrMalformed},
		{"overflows 64 bits in bytes", fmt.Sprintf("MemAvailable: %d kB\n", uint64(1<<54)), 0, ErrMalformed},
		{"twice", "MemAvailable: 5 kB\nMemAvailable: 6 kB\n", 0, ErrMalformed},
		{"long unrelated line", "MemAvailable: 5 kB\n" + strings.Repeat("x", maxMeminfo-100) + "\n", 5 * 1024, nil},
		{"more than the bound", strings.Repeat("x", maxMeminfo+1), 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMeminfo(strings.NewReader(tt.text))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseMeminfo = %d, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMeminfo = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseMeminfoReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ParseMeminfo(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the reader's", err)
	}
}

func TestReadMeminfo(t *testing.T) {
	got, err := ReadMeminfo(filepath.Join("testdata", "meminfo-6.8.txt"))
	if err != nil || got != 2143216*1024 {
		t.Fatalf("ReadMeminfo = %d, %v", got, err)
	}
	_, err = ReadMeminfo(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	_, err = ReadMeminfo(filepath.Join("testdata", "meminfo-3.10.txt"))
	if !errors.Is(err, ErrNoField) || !strings.Contains(err.Error(), "meminfo-3.10.txt") {
		t.Fatalf("old kernel: %v, want ErrNoField naming the file", err)
	}
}

// The real /proc/meminfo parses on Linux and says something plausible.
func TestAvailable(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := Available(); err == nil {
			t.Fatal("Available succeeded without /proc/meminfo")
		}
		t.Skip("MemAvailable is Linux's")
	}
	got, err := Available()
	if err != nil {
		t.Fatal(err)
	}
	if got == 0 || got%1024 != 0 {
		t.Fatalf("Available = %d bytes, want a positive number of KiB", got)
	}
}

// Whatever the text, ParseMeminfo answers without panicking; an answer is
// a whole number of KiB that reads back the same when written the way the
// kernel writes it.
func FuzzParseMeminfo(f *testing.F) {
	for _, name := range []string{"meminfo-6.8.txt", "meminfo-3.10.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("MemAvailable: 5 kB\nMemAvailable: 6 kB\n"))
	f.Add([]byte("MemAvailable: -1 kB"))
	f.Add([]byte("MemAvailable:\t18014398509481983 kB\r\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		got, err := ParseMeminfo(strings.NewReader(string(text)))
		if err != nil {
			if !errors.Is(err, ErrNoField) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither ErrNoField nor ErrMalformed", err)
			}
			return
		}
		if got%1024 != 0 {
			t.Fatalf("%d bytes is not a whole number of KiB", got)
		}
		again, err := ParseMeminfo(strings.NewReader(fmt.Sprintf("MemAvailable: %d kB\n", got/1024)))
		if err != nil || again != got {
			t.Fatalf("round trip of %d gave %d, %v", got, again, err)
		}
	})
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
