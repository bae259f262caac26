package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/install"
	"github.com/ocfupdate/ocfupdate/internal/sample"
	"github.com/ocfupdate/ocfupdate/internal/tufrepo"
)

// BenchmarkUpgrade runs a whole upgrade of a real ocfupdated process from a
// signed repository over HTTPS and over CoAP, for several package sizes.
// It reports the download throughput (time in svv) and the agent's peak
// resident memory (VmHWM), which must not grow with the package.
//
//	go test -run '^$' -bench Upgrade -benchtime 1x ./cmd/ocfupdated
func BenchmarkUpgrade(b *testing.B) {
	for _, tr := range []string{"https", "coap"} {
		for _, mib := range []int64{16, 64, 256} {
			if tr == "coap" && mib == 256 {
				continue // ~45 MB/s over CoAP: 64 MiB shows the trend
			}
			b.Run(fmt.Sprintf("%s/%dMiB", tr, mib), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					benchUpgrade(b, tr, mib<<20)
				}
			})
		}
	}
}

func benchUpgrade(b *testing.B, transport string, size int64) {
	b.StopTimer()
	repoDir := filepath.Join(b.TempDir(), "repo")
	if err := tufrepo.Init(repoDir, tufrepo.InitOptions{}); err != nil {
		b.Fatal(err)
	}
	pkg := filepath.Join(b.TempDir(), "pkg.tar")
	f, err := os.Create(pkg)
	if err != nil {
		b.Fatal(err)
	}
	if err := install.WriteTar(f, install.Manifest{Version: "1.1.0", Model: "thermo"},
		install.PackageFile{Name: "image.bin", Mode: 0o644, Size: size, Data: sample.Noise(size, 1)}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if _, err := tufrepo.AddTarget(repoDir, pkg, "thermo", "1.1.0", tufrepo.AddOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := tufrepo.Publish(repoDir, tufrepo.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	os.Remove(pkg)
	r := &testRepo{dir: repoDir}
	root, _ := tufrepo.TrustedRoot(repoDir)
	r.root = filepath.Join(b.TempDir(), "root.json")
	os.WriteFile(r.root, root, 0o600)

	args := []string{"--trust", r.root, "--model", "thermo", "--version", "1.0.0", "--restart=false", "--log-level", "warn"}
	var purl string
	if transport == "coap" {
		purl = r.serveCoAP(b)
		args = append(args, "--allow-insecure")
	} else {
		var ca string
		purl, ca = r.serveHTTPS(b, nil)
		args = append(args, "--ca", ca)
	}
	d := startDaemon(b, b.TempDir(), args...)
	c, err := client.Dial(ctxT(b), d.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.StartTimer()
	if _, err := c.Update(ctxT(b), "/oc/swu", client.Update{PURL: &purl, Action: "upgrade"}); err != nil {
		b.Fatal(err)
	}
	var svvAt, svaAt time.Time
	for {
		s, err := c.Status(ctxT(b), "/oc/swu")
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		if s.State == "svv" && svvAt.IsZero() {
			svvAt = now
		}
		if (s.State == "sva" || s.State == "upgrading" || s.Result != 0) && svaAt.IsZero() && !svvAt.IsZero() {
			svaAt = now
		}
		if s.State == "idle" && s.Action == "idle" && s.Result != 0 {
			if s.Result != 1 {
				b.Fatalf("upgrade failed: %+v", s)
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	dl := svaAt.Sub(svvAt).Seconds()
	b.ReportMetric(float64(size)/(1<<20)/dl, "MiB/s")
	b.ReportMetric(float64(peakRSS(b, d.Cmd.Process.Pid))/(1<<20), "peak-RSS-MiB")
}

// peakRSS reads VmHWM (peak resident set) of a process from /proc.
func peakRSS(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
