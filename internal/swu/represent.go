package swu

import "time"

// Represent returns the representation of p for interface iface, ready to be
// encoded as CBOR: oic.if.baseline adds rt, if and n (when set); any other
// interface gets the oic.if.rw representation. The server has already
// refused interfaces the resource does not offer.
func Represent(p Properties, iface string) map[string]any {
	m := map[string]any{
		PropNV:         p.NV,
		PropPURL:       p.PURL,
		PropAction:     string(orIdle(p.Action)),
		PropState:      string(orIdleState(p.State)),
		PropResult:     int64(p.Result),
		PropUpdateTime: UpdateTimeNone,
		PropDetail:     p.Detail,
	}
	if !p.UpdateTime.IsZero() {
		m[PropUpdateTime] = formatTime(p.UpdateTime)
	}
	if !p.LastUpdate.IsZero() {
		m[PropLastUpdate] = formatTime(p.LastUpdate)
	}
	if p.Signed != "" {
		m[PropSigned] = p.Signed
	}
	if p.Progress != nil {
		m[PropProgress] = map[string]any{
			ProgressDone:  p.Progress.Done,
			ProgressTotal: p.Progress.Total,
		}
	}
	if iface == IfBaseline {
		m[PropRT] = []string{ResourceType}
		m[PropIf] = []string{IfRW, IfBaseline}
		if p.Name != "" {
			m[PropName] = p.Name
		}
	}
	return m
}

// formatTime renders t in UTC so the representation does not depend on the
// device's local zone, with as much precision as t has.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func orIdle(a Action) Action {
	if a == "" {
		return ActionIdle
	}
	return a
}

func orIdleState(s State) State {
	if s == "" {
		return StateIdle
	}
	return s
}
