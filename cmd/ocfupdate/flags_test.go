package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * day, true},
		{"1d", day, true},
		{"0d", 0, true},
		{"1d12h", day + 12*time.Hour, true},
		{"1d30m15s", day + 30*time.Minute + 15*time.Second, true},
		{"36h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1.5h", 90 * time.Minute, true},
		{"-1h", -time.Hour, true}, // Go syntax; callers that need positive check
		{"106751d", 106751 * day, true},
		{"106752d", 0, false}, // beyond time.Duration
		{"106751d23h59m", 0, false},
		{"", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"-1d", 0, false},
		{"1d-1h", 0, false},
		{"5h1d", 0, false},
		{"1dd", 0, false},
		{"abc", 0, false},
		{"10", 0, false},
		{"1w", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "90d") {
			t.Errorf("parseDuration(%q) error %q gives no example", tt.in, err)
		}
	}
}

func TestThresholdFlag(t *testing.T) {
	tests := []struct {
		sets    []string
		want    tufrepo.Thresholds
		wantErr string
	}{
		{[]string{"root=2"}, tufrepo.Thresholds{Root: 2}, ""},
		{[]string{"root=2", "targets=3"}, tufrepo.Thresholds{Root: 2, Targets: 3}, ""},
		{[]string{"snapshot=2,timestamp=4"}, tufrepo.Thresholds{Snapshot: 2, Timestamp: 4}, ""},
		{[]string{"root=2", "root=3"}, tufrepo.Thresholds{Root: 3}, ""}, // last wins, as for any flag
		{[]string{"admin=2"}, tufrepo.Thresholds{}, `unknown role "admin"`},
		{[]string{"root"}, tufrepo.Thresholds{}, "want ROLE=N"},
		{[]string{"root="}, tufrepo.Thresholds{}, "want ROLE=N"},
		{[]string{"root=0"}, tufrepo.Thresholds{}, "at least 1"},
		{[]string{"root=x"}, tufrepo.Thresholds{}, "at least 1"},
	}
	for _, tt := range tests {
		var th tufrepo.Thresholds
		f := thresholdFlag(&th)
		var err error
		for _, s := range tt.sets {
			if err = f.Set(s); err != nil {
				break
			}
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error %v, want %q", tt.sets, err, tt.wantErr)
			}
			continue
		}
		if err != nil || th != tt.want {
			t.Errorf("%v: %+v, %v; want %+v", tt.sets, th, err, tt.want)
		}
	}
}

func TestExpiryFlag(t *testing.T) {
	publishRoles := []string{tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp}
	tests := []struct {
		roles   []string
		set     string
		want    tufrepo.Expiries
		wantErr string
	}{
		{allRoles, "root=365d", tufrepo.Expiries{Root: 365 * day}, ""},
		{allRoles, "timestamp=6h,snapshot=2d", tufrepo.Expiries{Timestamp: 6 * time.Hour, Snapshot: 2 * day}, ""},
		{publishRoles, "targets=30d", tufrepo.Expiries{Targets: 30 * day}, ""},
		{publishRoles, "root=1d", tufrepo.Expiries{}, `unknown role "root": want one of targets, snapshot, timestamp`},
		{allRoles, "timestamp=0s", tufrepo.Expiries{}, "must be positive"},
		{allRoles, "timestamp=-1h", tufrepo.Expiries{}, "must be positive"},
		{allRoles, "timestamp=soon", tufrepo.Expiries{}, `bad duration "soon"`},
	}
	for _, tt := range tests {
		var e tufrepo.Expiries
		err := expiryFlag(&e, tt.roles...).Set(tt.set)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.set, err, tt.wantErr)
			}
			continue
		}
		if err != nil || e != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.set, e, err, tt.want)
		}
	}
}

// FuzzParseDuration checks that parseDuration never panics, agrees with
// time.ParseDuration where there is no day part, and that a day part adds
// exactly its days to the rest.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "1d12h", "36h", "", "d", "1d-1h", "106752d", "1.5h", "0d0s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDuration(s)
		before, after, hasDay := strings.Cut(s, "d")
		if !hasDay {
			want, werr := time.ParseDuration(s)
			if (err == nil) != (werr == nil) || got != want {
				t.Fatalf("parseDuration(%q) = %v, %v; time.ParseDuration %v, %v", s, got, err, want, werr)
			}
			return
		}
		if err != nil {
			return
		}
		n, nerr := strconv.ParseInt(before, 10, 64)
		if nerr != nil || n < 0 {
			t.Fatalf("parseDuration(%q) accepted day part %q", s, before)
		}
		var rest time.Duration
		if after != "" {
			if rest, nerr = time.ParseDuration(after); nerr != nil || rest < 0 {
				t.Fatalf("parseDuration(%q) accepted rest %q", s, after)
			}
		}
		if got != time.Duration(n)*day+rest || got < 0 {
			t.Fatalf("parseDuration(%q) = %v, want %d days + %v", s, got, n, rest)
		}
	})
}
