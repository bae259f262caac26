package swu

import "time"

// ResourceType is the rt of the software update resource.
const ResourceType = "oic.r.softwareupdate"

// Interfaces of the resource; the first is the default.
const (
	IfRW       = "oic.if.rw"
	IfBaseline = "oic.if.baseline"
)

// Action is a swupdateaction value. Persisted and on the wire as these strings.
type Action string

const (
	ActionIdle    Action = "idle"    // nothing scheduled; on UPDATE: cancel
	ActionCheck   Action = "isac"    // initiate software availability check
	ActionFetch   Action = "isvv"    // initiate software version validation (download + verify)
	ActionUpgrade Action = "upgrade" // initiate secure software update
)

// State is a swupdatestate value (Table 3). Persisted and on the wire as these strings.
type State string

const (
	StateIdle      State = "idle"
	StateNSA       State = "nsa"
	StateSVV       State = "svv"
	StateSVA       State = "sva"
	StateUpgrading State = "upgrading"
)

// Result is a swupdateresult code (Table 5); 400–599 carry the package
// source's HTTP status or CoAP code (4.04 → 404).
type Result int

const (
	ResultIdle            Result = 0
	ResultSuccess         Result = 1
	ResultNoRAM           Result = 2
	ResultNoFlash         Result = 3
	ResultConnectionLost  Result = 4
	ResultValidation      Result = 5
	ResultInvalidURL      Result = 6
	ResultUnsupportedProt Result = 7
	ResultUpdateFailed    Result = 8
)

// Progress is the vendor property x.org.ocfupdate.progress.
type Progress struct {
	Done  int64 `cbor:"done" json:"done"`
	Total int64 `cbor:"total" json:"total"`
}

// Properties is a snapshot of the resource's properties as served on GET.
type Properties struct {
	NV         string    // nv; empty when no new version is known
	PURL       string    // purl
	Action     Action    // swupdateaction: the pending or running action, else idle
	State      State     // swupdatestate
	Result     Result    // swupdateresult
	LastUpdate time.Time // lastupdate
	Signed     string    // signed ("vendor")
	UpdateTime time.Time // updatetime (zero: never set)
	Progress   *Progress // x.org.ocfupdate.progress (nil: no transfer running)
	Detail     string    // x.org.ocfupdate.detail
	Name       string    // n (baseline), optional
}

// Update is a validated UPDATE request. Nil pointer / false: not present.
type Update struct {
	PURL       *string
	Action     *Action
	UpdateTime *time.Time // set for an RFC 3339 time or "now" (Now true); always UTC
	Now        bool       // updatetime was "now"
	CancelTime bool       // updatetime was "none"
}
