package fsm

import "github.com/ocfupdate/ocfupdate/internal/swu"

type goalRule int

const (
	goalKeep   goalRule = iota // Goal unchanged
	goalClear                  // Goal := idle (job finished or cancelled)
	goalAction                 // Goal := the requested action
)

type resultRule int

const (
	resKeep    resultRule = iota // Result unchanged
	resIdle                      // 0: a new job starts, or nothing to report
	resSuccess                   // 1
	resEvent                     // the failure code the event carries
)

// row is one line of the transition table. The first row that matches
// (state, event kind, action for requests, current goal) applies.
type row struct {
	from    swu.State
	event   EventKind
	action  swu.Action   // EvRequest: the requested action; "" matches any
	goals   []swu.Action // current goal must be one of these; nil matches any
	to      swu.State    // "" keeps the state
	goal    goalRule
	result  resultRule
	effects []Effect
	refuse  string // non-empty: the request is refused with this reason
}

// Short names keep the table readable.
const (
	idle      = swu.StateIdle
	nsa       = swu.StateNSA
	svv       = swu.StateSVV
	sva       = swu.StateSVA
	upgrading = swu.StateUpgrading

	none    = swu.ActionIdle
	isac    = swu.ActionCheck
	isvv    = swu.ActionFetch
	upgrade = swu.ActionUpgrade
)

var (
	anyJob   = []swu.Action{isac, isvv, upgrade}
	noJob    = []swu.Action{none}
	fetching = []swu.Action{isvv, upgrade}
)

var table = []row{
	// ---- idle: waiting; a check runs here (goal set, state idle) ----
	{from: idle, event: EvRequest, action: none, goals: noJob},
	{from: idle, event: EvRequest, action: none, goals: anyJob, goal: goalClear, effects: []Effect{CancelWork}},
	{from: idle, event: EvRequest, action: isac, goals: noJob, goal: goalAction, result: resIdle, effects: []Effect{StartCheck}},
	{from: idle, event: EvRequest, action: isac, refuse: "a check is already running"},
	{from: idle, event: EvRequest, action: isvv, goals: noJob, to: svv, goal: goalAction, result: resIdle, effects: []Effect{StartFetch}},
	{from: idle, event: EvRequest, action: isvv, goals: []swu.Action{isac, isvv}, goal: goalAction},
	{from: idle, event: EvRequest, action: isvv, refuse: "an upgrade is already running"},
	{from: idle, event: EvRequest, action: upgrade, goals: noJob, goal: goalAction, result: resIdle, effects: []Effect{StartCheck}},
	{from: idle, event: EvRequest, action: upgrade, goal: goalAction},

	{from: idle, event: EvCheckFound, goals: []swu.Action{isac}, to: nsa, goal: goalClear, effects: []Effect{SetNV}},
	{from: idle, event: EvCheckFound, goals: fetching, to: nsa, effects: []Effect{SetNV, Continue}},
	{from: idle, event: EvCheckNone, goals: anyJob, goal: goalClear, result: resIdle, effects: []Effect{ClearNV}},
	{from: idle, event: EvCheckFailed, goals: anyJob, goal: goalClear, result: resEvent, effects: []Effect{ClearNV}},
	{from: idle, event: EvBoot, goals: anyJob, effects: []Effect{StartCheck}},
	{from: idle, event: EvBoot, goals: noJob},

	// ---- nsa: a newer version is known; a re-check also runs here ----
	{from: nsa, event: EvRequest, action: none, goal: goalClear, to: idle, result: resIdle, effects: []Effect{CancelWork, ClearNV}},
	{from: nsa, event: EvRequest, action: isac, goals: noJob, goal: goalAction, result: resIdle, effects: []Effect{StartCheck}},
	{from: nsa, event: EvRequest, action: isac, refuse: "a check is already running"},
	{from: nsa, event: EvRequest, action: isvv, goals: noJob, to: svv, goal: goalAction, result: resIdle, effects: []Effect{StartFetch}},
	{from: nsa, event: EvRequest, action: isvv, goals: []swu.Action{isac, isvv}, goal: goalAction},
	{from: nsa, event: EvRequest, action: isvv, refuse: "an upgrade is already running"},
	{from: nsa, event: EvRequest, action: upgrade, goals: noJob, to: svv, goal: goalAction, result: resIdle, effects: []Effect{StartFetch}},
	{from: nsa, event: EvRequest, action: upgrade, goal: goalAction},

	{from: nsa, event: EvCheckFound, goals: []swu.Action{isac}, goal: goalClear, effects: []Effect{SetNV}},
	{from: nsa, event: EvCheckFound, goals: fetching, effects: []Effect{SetNV, Continue}},
	{from: nsa, event: EvCheckNone, goals: anyJob, to: idle, goal: goalClear, result: resIdle, effects: []Effect{ClearNV}},
	{from: nsa, event: EvCheckFailed, goals: anyJob, to: idle, goal: goalClear, result: resEvent, effects: []Effect{ClearNV}},
	{from: nsa, event: EvContinue, goals: fetching, to: svv, effects: []Effect{StartFetch}},
	{from: nsa, event: EvBoot, goals: []swu.Action{isac}, effects: []Effect{StartCheck}},
	{from: nsa, event: EvBoot, goals: fetching, effects: []Effect{Continue}},
	{from: nsa, event: EvBoot, goals: noJob},

	// ---- svv: downloading and validating ----
	{from: svv, event: EvRequest, action: none, to: idle, goal: goalClear, result: resIdle, effects: []Effect{CancelWork, Discard, ClearNV}},
	{from: svv, event: EvRequest, action: isac, refuse: "a download is in progress; cancel it with swupdateaction idle first"},
	{from: svv, event: EvRequest, action: isvv, goal: goalAction},
	{from: svv, event: EvRequest, action: upgrade, goal: goalAction},

	{from: svv, event: EvFetchDone, goals: []swu.Action{upgrade}, to: sva, effects: []Effect{Continue}},
	{from: svv, event: EvFetchDone, to: sva, goal: goalClear},
	{from: svv, event: EvFetchNone, to: idle, goal: goalClear, result: resIdle, effects: []Effect{Discard, ClearNV}},
	{from: svv, event: EvFetchFailed, to: idle, goal: goalClear, result: resEvent, effects: []Effect{Discard, ClearNV}},
	{from: svv, event: EvBoot, effects: []Effect{StartFetch}},

	// ---- sva: a validated package waits ----
	{from: sva, event: EvRequest, action: none, to: idle, goal: goalClear, result: resIdle, effects: []Effect{Discard, ClearNV}},
	{from: sva, event: EvRequest, action: isac, refuse: "a validated package is waiting; upgrade it, or discard it with swupdateaction idle"},
	{from: sva, event: EvRequest, action: isvv},
	{from: sva, event: EvRequest, action: upgrade, to: upgrading, goal: goalAction, result: resIdle, effects: []Effect{StartInstall}},

	{from: sva, event: EvContinue, goals: []swu.Action{upgrade}, to: upgrading, effects: []Effect{StartInstall}},
	{from: sva, event: EvBoot, goals: []swu.Action{upgrade}, effects: []Effect{Continue}},
	{from: sva, event: EvBoot},

	// ---- upgrading: installing; nothing else may start ----
	{from: upgrading, event: EvRequest, refuse: "an upgrade is being installed"},
	{from: upgrading, event: EvInstallDone, to: idle, goal: goalClear, result: resSuccess, effects: []Effect{CommitVersion, Discard, ClearNV}},
	{from: upgrading, event: EvInstallFailed, to: idle, goal: goalClear, result: resEvent, effects: []Effect{Discard, ClearNV}},
	{from: upgrading, event: EvBoot, effects: []Effect{ConfirmInstall}},
}
