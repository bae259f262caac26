package install

import (
	"strings"
	"testing"
)

func TestTailKeepsLastBytes(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"under", 8, []string{"abc", "de"}, "abcde"},
		{"exact", 4, []string{"ab", "cd"}, "abcd"},
		{"overflow across writes", 4, []string{"abc", "def", "gh"}, "efgh"},
		{"single write larger than max", 4, []string{"0123456789"}, "6789"},
		{"many small writes", 3, strings.Split("abcdefghijklmnop", ""), "nop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTail(tt.max)
			for _, w := range tt.writes {
				n, err := tl.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := tl.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if cap(tl.buf) > 2*tt.max {
				t.Errorf("buffer grew to %d, bound %d", cap(tl.buf), 2*tt.max)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 100, ""},
		{"one line\n", 100, "one line"},
		{"first\n\n  second  \r\n", 100, "first | second"},
		{"bell\x07 and esc\x1b[31m", 100, "bell  and esc [31m"},
		{"head that is cut\nkept tail", 9, "kept tail"},
		{"\xff\xfeok", 100, "ok"},
		{"a\nb\nc\nd\n", 5, "c | d"}, // joined lines are bounded too
	}
	for _, tt := range tests {
		if got := summarize(tt.in, tt.max); got != tt.want {
			t.Errorf("summarize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"rauc", "install"}, []string{"rauc", "install", "/p.raucb"}},
		{[]string{"rauc", "install", "{path}"}, []string{"rauc", "install", "/p.raucb"}},
		{[]string{"tool", "--bundle={path}", "--v={version}"}, []string{"tool", "--bundle=/p.raucb", "--v=1.1.0"}},
	}
	for _, tt := range tests {
		got := substitute(tt.args, "/p.raucb", "1.1.0")
		if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("substitute(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}
