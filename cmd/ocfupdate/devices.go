package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ocfupdate/ocfupdate/client"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// deviceJSON is one device as discover, status and watch print it with
// --output json. Field names are stable.
type deviceJSON struct {
	Endpoint   string        `json:"endpoint"`
	ID         string        `json:"id,omitempty"`
	Name       string        `json:"name,omitempty"`
	Model      string        `json:"model,omitempty"`
	Version    string        `json:"version,omitempty"` // sv: installed
	Href       string        `json:"href,omitempty"`
	State      string        `json:"state,omitempty"`
	Action     string        `json:"action,omitempty"`
	Result     *int          `json:"result,omitempty"`
	ResultText string        `json:"result_text,omitempty"`
	NV         string        `json:"nv,omitempty"`
	PURL       string        `json:"purl,omitempty"`
	UpdateTime string        `json:"updatetime,omitempty"`
	LastUpdate string        `json:"lastupdate,omitempty"`
	Progress   *swu.Progress `json:"progress,omitempty"`
	Detail     string        `json:"detail,omitempty"`
	Error      string        `json:"error,omitempty"`
}

func toDeviceJSON(d client.Discovered) deviceJSON {
	j := deviceJSON{Endpoint: d.Endpoint, ID: d.Info.ID, Name: d.Info.Name, Model: d.Info.Model,
		Version: d.Info.SoftwareVersion, Href: d.Href}
	if d.Status != nil {
		j.setStatus(*d.Status)
	}
	if d.Err != nil {
		j.Error = oneLine(d.Err.Error())
	}
	return j
}

func (j *deviceJSON) setStatus(s client.Status) {
	r := s.Result
	j.State, j.Action, j.Result, j.ResultText = s.State, s.Action, &r, client.ResultText(r)
	j.NV, j.PURL, j.UpdateTime, j.LastUpdate = s.NV, s.PURL, s.UpdateTime, s.LastUpdate
	j.Progress, j.Detail = s.Progress, s.Detail
}

// stateCell is the update state as tables show it: the state, the action
// when one is pending or running, and the progress while transferring.
func stateCell(s *client.Status) string {
	if s == nil {
		return "-"
	}
	c := s.State
	if s.Action != client.ActionIdle {
		c += " (" + s.Action + ")"
	}
	if p := s.Percent(); p >= 0 {
		c += fmt.Sprintf(" %d%%", p)
	}
	return c
}

// resultCell is the result code with its meaning.
func resultCell(s *client.Status) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%d %s", s.Result, client.ResultText(s.Result))
}

// shortID is the first group of a device's UUID: enough to tell devices
// apart in a table (JSON has the whole ID).
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return dash(id)
}

// selection is how a command is told which devices to talk to: endpoints
// as arguments, a file of endpoints, or multicast discovery.
type selection struct {
	file      string
	discover  bool
	wait      time.Duration
	reqTimout time.Duration
	sec       securityFlags
}

// register adds --endpoints, --discover (when withDiscover) and --wait.
func (s *selection) register(f *pflag.FlagSet, withDiscover bool) {
	f.StringVar(&s.file, "endpoints", "", "read device endpoints from `FILE`, one per line (# comments)")
	if withDiscover {
		f.BoolVar(&s.discover, "discover", false, "find devices by multicast on 224.0.1.187 and ff02::158")
	}
	f.DurationVar(&s.wait, "wait", 2*time.Second, "how long to collect multicast answers")
	f.DurationVar(&s.reqTimout, "request-timeout", 5*time.Second, "time limit of each request to a device")
	s.sec.register(f)
}

// endpoints returns the explicit endpoints: args, then the file's.
func (s *selection) endpoints(args []string) ([]string, error) {
	eps := append([]string(nil), args...)
	if s.file != "" {
		fromFile, err := readEndpointsFile(s.file)
		if err != nil {
			return nil, err
		}
		eps = append(eps, fromFile...)
	}
	for _, ep := range eps {
		if err := s.sec.checkEndpoint(ep); err != nil {
			return nil, err
		}
	}
	return eps, nil
}

// readEndpointsFile reads one endpoint per line; blank lines and text after
// "#" are ignored.
func readEndpointsFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	defer f.Close()
	var eps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			eps = append(eps, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("endpoints %s: %w", path, err)
	}
	return eps, nil
}

// find runs discovery over the selection (multicast when asked for).
func (s *selection) find(ctx context.Context, eps []string, multicast bool) ([]client.Discovered, error) {
	sec, err := s.sec.security()
	if err != nil {
		return nil, err
	}
	return client.Discover(ctx, client.DiscoverOptions{Endpoints: eps, Multicast: multicast, Wait: s.wait,
		RequestTimeout: s.reqTimout, Security: sec})
}

// isTerminal reports whether w is a terminal, where live views redraw in
// place; anywhere else they print plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// devicesTable writes discovered devices as discover and status show them.
func devicesTable(w io.Writer, devs []client.Discovered) {
	fmt.Fprintln(w, "ID\tNAME\tMODEL\tVERSION\tENDPOINT\tSTATE\tRESULT\tDETAIL")
	for _, d := range devs {
		detail := ""
		if d.Status != nil {
			detail = d.Status.Detail
		}
		if d.Err != nil {
			detail = "error: " + oneLine(d.Err.Error())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(d.Info.ID), dash(d.Info.Name), dash(d.Info.Model),
			dash(d.Info.SoftwareVersion), d.Endpoint, stateCell(d.Status), resultCell(d.Status), detail)
	}
}
