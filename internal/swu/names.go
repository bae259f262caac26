package swu

// Property names on the wire. They live here, in one place, because the
// validator, the representation, the client and the tests must agree on them
// letter for letter.
const (
	PropNV         = "nv"
	PropPURL       = "purl"
	PropAction     = "swupdateaction"
	PropState      = "swupdatestate"
	PropResult     = "swupdateresult"
	PropLastUpdate = "lastupdate"
	PropSigned     = "signed"
	PropUpdateTime = "updatetime"

	// PropUpdateTimeDraft is the draft's spelling of updatetime, accepted on
	// UPDATE only; the representation always uses PropUpdateTime.
	PropUpdateTimeDraft = "updateTime"

	// Vendor-specific read-only properties (OCF "x." prefix).
	PropProgress = "x.org.ocfupdate.progress"
	PropDetail   = "x.org.ocfupdate.detail"

	// Keys inside PropProgress.
	ProgressDone  = "done"
	ProgressTotal = "total"

	// Common properties of the baseline interface.
	PropRT   = "rt"
	PropIf   = "if"
	PropName = "n"
	PropID   = "id"
)

// Values of updatetime that are not a time.
const (
	UpdateTimeNow  = "now"  // run the action at once
	UpdateTimeNone = "none" // cancel the schedule; also the representation of "never set"
)

// DefaultHref is the resource's href when none is configured: the one
// IoTivity-Lite and plgd use. Clients must still find it through /oic/res.
const DefaultHref = "/oc/swu"

// actionAliases maps every spelling accepted on UPDATE to its Action.
var actionAliases = map[string]Action{
	string(ActionIdle):    ActionIdle,
	string(ActionCheck):   ActionCheck,
	string(ActionFetch):   ActionFetch,
	string(ActionUpgrade): ActionUpgrade,
	"isv":                 ActionFetch, // the draft's swagger enum spells isvv this way
}

// readOnly is every property a client may read but not write.
var readOnly = map[string]bool{
	PropNV:         true,
	PropState:      true,
	PropResult:     true,
	PropLastUpdate: true,
	PropSigned:     true,
	PropProgress:   true,
	PropDetail:     true,
	PropRT:         true,
	PropIf:         true,
	PropName:       true,
	PropID:         true,
}
