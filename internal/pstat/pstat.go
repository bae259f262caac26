package pstat

import (
	"strconv"
	"strings"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Resource identity.
const (
	Href         = "/oic/sec/pstat"
	ResourceType = "oic.r.pstat"
	IfBaseline   = "oic.if.baseline"
)

// Property names on the wire.
const (
	PropDOS        = "dos"
	PropIsOp       = "isop"
	PropCM         = "cm"
	PropTM         = "tm"
	PropOM         = "om"
	PropSM         = "sm"
	PropRownerUUID = "rowneruuid"
	PropRT         = "rt"
	PropIf         = "if"
	PropName       = "n"
	PropID         = "id"

	// Keys inside dos.
	DOSState   = "s"
	DOSPending = "p"
)

// The software update bits of tm and cm (see the package doc).
const (
	BitSVV uint64 = 64  // tm: isvv; cm: valid software available
	BitSSV uint64 = 128 // tm: upgrade; cm: upgrading
	BitNSA uint64 = 256 // tm: isac; cm: new software available

	// UpdateBits are all the bits this package reads and writes.
	UpdateBits = BitNSA | BitSVV | BitSSV
)

// Device onboarding states (dos.s).
const (
	DOSReset  = 0
	DOSRFOTM  = 1 // ready for ownership transfer
	DOSRFPRO  = 2 // ready for provisioning
	DOSRFNOP  = 3 // ready for normal operation
	DOSSReset = 4 // soft reset
)

// OMClientDirected is the oic.sec.pomtype value for client-directed
// provisioning, used for om and sm.
const OMClientDirected = 4

// NilUUID is rowneruuid when no owner is known.
const NilUUID = "00000000-0000-0000-0000-000000000000"

// DOS is the dos property: onboarding state and whether a change is pending.
type DOS struct {
	S uint64 // one of the DOS* constants
	P bool
}

// Properties is a snapshot of pstat as served on GET.
type Properties struct {
	DOS        DOS
	IsOp       bool
	CM         uint64
	TM         uint64
	OM         uint64
	SM         uint64
	RownerUUID string // NilUUID when empty
}

// Defaults returns the properties of an operational device that nothing has
// been asked of: RFNOP, isop, client-directed, no update bits.
func Defaults() Properties {
	return Properties{
		DOS:        DOS{S: DOSRFNOP},
		IsOp:       true,
		OM:         OMClientDirected,
		SM:         OMClientDirected,
		RownerUUID: NilUUID,
	}
}

// cmBits is Table 3 of the draft: the update bits of cm in each state.
var cmBits = map[swu.State]uint64{
	swu.StateIdle:      0,
	swu.StateNSA:       BitNSA,
	swu.StateSVV:       BitNSA,
	swu.StateSVA:       BitNSA | BitSVV,
	swu.StateUpgrading: BitNSA | BitSVV | BitSSV,
}

// CMForState returns base with the update bits set as Table 3 says for s and
// every other bit untouched. An unknown state sets none of them, like idle:
// cm must never claim progress that was not made.
func CMForState(base uint64, s swu.State) uint64 {
	return base&^UpdateBits | cmBits[s]
}

// tmBits is Table 4 of the draft: the tm bit that triggers each action.
var tmBits = map[swu.Action]uint64{
	swu.ActionIdle:    0,
	swu.ActionCheck:   BitNSA,
	swu.ActionFetch:   BitSVV,
	swu.ActionUpgrade: BitSSV,
}

// TMForAction returns the tm bit of action a; 0 for idle or an unknown action.
func TMForAction(a swu.Action) uint64 {
	return tmBits[a]
}

// ActionForTM returns the action a tm value asks for: ActionIdle for 0, the
// furthest-reaching action when several update bits are set, and an
// *swu.Error naming tm when a bit outside UpdateBits is set.
func ActionForTM(tm uint64) (swu.Action, error) {
	if other := tm &^ UpdateBits; other != 0 {
		return "", &swu.Error{Property: PropTM, Message: "tm bits " + bitList(other) +
			" are not supported by this device; only 256 (isac), 64 (isvv) and 128 (upgrade) can be set"}
	}
	switch {
	case tm&BitSSV != 0:
		return swu.ActionUpgrade, nil
	case tm&BitSVV != 0:
		return swu.ActionFetch, nil
	case tm&BitNSA != 0:
		return swu.ActionCheck, nil
	}
	return swu.ActionIdle, nil
}

// bitList renders the set bits of v as "1, 2 and 32".
func bitList(v uint64) string {
	var bits []string
	for b := uint64(1); b != 0; b <<= 1 {
		if v&b != 0 {
			bits = append(bits, strconv.FormatUint(b, 10))
		}
	}
	if len(bits) == 1 {
		return bits[0]
	}
	return strings.Join(bits[:len(bits)-1], ", ") + " and " + bits[len(bits)-1]
}

// Represent returns the baseline representation of p, ready to be encoded.
func Represent(p Properties) map[string]any {
	owner := p.RownerUUID
	if owner == "" {
		owner = NilUUID
	}
	return map[string]any{
		PropDOS:        map[string]any{DOSState: p.DOS.S, DOSPending: p.DOS.P},
		PropIsOp:       p.IsOp,
		PropCM:         p.CM,
		PropTM:         p.TM,
		PropOM:         p.OM,
		PropSM:         p.SM,
		PropRownerUUID: owner,
		PropRT:         []string{ResourceType},
		PropIf:         []string{IfBaseline},
	}
}
