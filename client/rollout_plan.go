package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// WaveSize is one element of a wave list such as "1,10%,50%,100%": how
// many devices, in total, have been started once the wave is over. Sizes
// are cumulative so that "10%" means a tenth of the fleet whatever the
// waves before it took.
type WaveSize struct {
	N       int  // a count, or a percentage when Percent
	Percent bool // N is a percentage of the fleet (1–100)
}

func (w WaveSize) String() string {
	if w.Percent {
		return strconv.Itoa(w.N) + "%"
	}
	return strconv.Itoa(w.N)
}

// cumulative is how many of total devices the wave reaches: percentages
// round up, so that 10% of 5 devices is one device, not none.
func (w WaveSize) cumulative(total int) int {
	n := w.N
	if w.Percent {
		n = (w.N*total + 99) / 100
	}
	return min(n, total)
}

// DefaultWaves is a canary, then a tenth, half, and the rest of the fleet.
var DefaultWaves = []WaveSize{{N: 1}, {N: 10, Percent: true}, {N: 50, Percent: true}, {N: 100, Percent: true}}

// ParseWaves parses a comma-separated wave list: counts ("1", "20") and
// percentages of the fleet ("10%"), each at least the one before it in
// effect. The last wave is extended to the whole fleet if it does not
// reach it: no device is silently left out.
func ParseWaves(s string) ([]WaveSize, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("waves: empty list")
	}
	var out []WaveSize
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		w := WaveSize{}
		num := part
		if p, ok := strings.CutSuffix(part, "%"); ok {
			w.Percent, num = true, p
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || (w.Percent && n > 100) {
			return nil, fmt.Errorf("waves: %q: want a count of at least 1 or a percentage from 1%% to 100%%", part)
		}
		w.N = n
		out = append(out, w)
	}
	return out, nil
}

// PlanWaves splits devices, in order, into waves: wave i takes the devices
// up to sizes[i]'s cumulative count. Waves that would be empty (10% of a
// fleet already reached by the canary) are dropped, and the last wave
// takes whatever remains.
func PlanWaves(devices []string, sizes []WaveSize) [][]string {
	if len(sizes) == 0 {
		sizes = DefaultWaves
	}
	var waves [][]string
	done := 0
	for i, w := range sizes {
		upTo := w.cumulative(len(devices))
		if i == len(sizes)-1 {
			upTo = len(devices)
		}
		if upTo <= done {
			continue
		}
		waves = append(waves, devices[done:upTo])
		done = upTo
	}
	return waves
}

// Threshold is --max-failures: a count of failed devices, or a percentage
// of the devices in the rollout. The rollout halts when failures exceed
// it, so 0 halts at the first failure.
type Threshold struct {
	N       int
	Percent bool
}

func (t Threshold) String() string {
	if t.Percent {
		return strconv.Itoa(t.N) + "%"
	}
	return strconv.Itoa(t.N)
}

// ParseThreshold parses "N" or "P%".
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	t := Threshold{}
	num := s
	if p, ok := strings.CutSuffix(s, "%"); ok {
		t.Percent, num = true, p
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || (t.Percent && n > 100) {
		return Threshold{}, fmt.Errorf("max failures %q: want a count (0 or more) or a percentage from 0%% to 100%%", s)
	}
	t.N = n
	return t, nil
}

// Limit is how many failures of total devices are tolerated. A percentage
// rounds down: 10% of 5 devices tolerates none.
func (t Threshold) Limit(total int) int {
	if t.Percent {
		return t.N * total / 100
	}
	return t.N
}
