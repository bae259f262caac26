package agent

import (
	"fmt"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/fsm"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// stateFile is the name of the agent's document in the data dir.
const stateFile = "state.json"

// stateVersion is the schema version of persisted; a file with a newer one
// is refused rather than misread.
const stateVersion = 1

// persisted is everything the agent must find again after a restart or a
// power cut. It is written atomically before every transition runs.
type persisted struct {
	Version  int         `json:"version"`
	Identity identity    `json:"identity"`
	Machine  fsm.Machine `json:"machine"`

	PURL       string      `json:"purl"`
	NV         string      `json:"nv,omitempty"`
	Target     step.Target `json:"target"` // what the last check found; fetched and installed
	LastUpdate time.Time   `json:"lastupdate"`
	UpdateTime time.Time   `json:"updatetime"`
	Schedule   *scheduled  `json:"schedule,omitempty"`
	Staged     string      `json:"staged,omitempty"` // path of the verified package
	Detail     string      `json:"detail"`

	// InstalledVersion is sv once an upgrade was confirmed; empty means
	// the version from the configuration.
	InstalledVersion string `json:"installed_version,omitempty"`
	// InstalledCounter is the package counter of that upgrade: the
	// repository's rollback protection compares against it.
	InstalledCounter int64 `json:"installed_counter,omitempty"`
	// CMOther keeps pstat cm bits this agent does not own.
	CMOther uint64 `json:"cm_other,omitempty"`
}

type identity struct {
	DI   string `json:"di"`
	PIID string `json:"piid"`
	PI   string `json:"pi"`
}

func newIdentity() (identity, error) {
	var id identity
	for _, p := range []*string{&id.DI, &id.PIID, &id.PI} {
		u, err := ocf.NewUUID()
		if err != nil {
			return id, err
		}
		*p = u
	}
	return id, nil
}

// clone returns a copy that shares nothing mutable with p.
func (p persisted) clone() persisted {
	if p.Schedule != nil {
		s := *p.Schedule
		p.Schedule = &s
	}
	return p
}

// installedVersion is sv: the confirmed upgrade's version, or the
// configured one.
func (p persisted) installedVersion(cfg Config) string {
	if p.InstalledVersion != "" {
		return p.InstalledVersion
	}
	return cfg.Device.SoftwareVersion
}

type scheduled struct {
	Action swu.Action `json:"action"`
	At     time.Time  `json:"at"`
}

func (p *persisted) validate() error {
	if p.Version > stateVersion {
		return fmt.Errorf("state file version %d is newer than this agent understands (%d)", p.Version, stateVersion)
	}
	if p.Identity.DI == "" || p.Identity.PIID == "" || p.Identity.PI == "" {
		return fmt.Errorf("state file has no device identity")
	}
	if _, _, err := fsm.Next(p.Machine, fsm.Event{Kind: fsm.EvContinue}); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if p.Schedule != nil {
		switch p.Schedule.Action {
		case swu.ActionCheck, swu.ActionFetch, swu.ActionUpgrade:
		default:
			return fmt.Errorf("state file: scheduled action %q", p.Schedule.Action)
		}
	}
	return nil
}
