// Package pstat is /oic/sec/pstat (rt oic.r.pstat), the OCF Security
// resource through which a client can trigger a software update by setting
// bits of "tm" (target mode) and follow it through the bits of "cm" (current
// mode), as the software update draft (OCF 2.3 CR 2303, Tables 3 and 4)
// describes. Like package swu it holds no state: a Controller (the agent)
// owns it.
//
// The bits (IoTivity-Lite's names in brackets):
//
//	256 [NSA]  tm: initiate software availability check (isac)
//	           cm: new software available
//	 64 [SVV]  tm: initiate software version validation (isvv)
//	           cm: valid software available
//	128 [SSV]  tm: initiate secure software update (upgrade)
//	           cm: upgrading
//
// and cm per swupdatestate (Table 3): idle none; nsa 256; svv 256; sva
// 256|64; upgrading 256|64|128. CMForState sets and clears only these three
// bits; every other cm bit belongs to onboarding and is left as it is.
//
// Decisions where the specifications are silent or do not fit a device that
// is only updated, never provisioned, through this resource:
//
//   - The device is always operational: dos is {"s": 3 (RFNOP), "p": false}
//     and isop is true. Onboarding (owner transfer, provisioning) is not
//     implemented here, so dos, isop, cm, om, sm and rowneruuid are
//     read-only and only tm can be written. An UPDATE naming any other
//     property is refused as a whole with 4.00, like one naming an unknown
//     property.
//   - om and sm are 4, "client-directed provisioning" (oic.sec.pomtype bit
//     value 4; 1 and 2 are the server-directed modes): a client, not a
//     provisioning service, drives this device's updates.
//   - rowneruuid is the nil UUID unless the agent supplies one.
//   - tm bits other than 64, 128 and 256 (reset, take owner, provisioning)
//     are refused with 4.00: accepting them silently would pretend to do
//     something this device does not do. tm 0 is accepted and does nothing.
//   - When several update bits are set, the furthest-reaching action wins:
//     upgrade (128) over isvv (64) over isac (256). Each action includes the
//     earlier steps (an upgrade checks, downloads and validates first), so
//     the union of the requests is the furthest one, and running them one
//     after the other would only repeat work.
//   - A tm write runs at once: it is the "manual" trigger; scheduling is the
//     job of swupdateaction/updatetime on the software update resource. The
//     Controller may refuse it (an *swu.Error, for example while upgrading),
//     which is 4.00 with a diagnostic; any other error is 5.00.
//   - What reading tm returns is the Controller's choice; the agent reports
//     TMForAction of the action running or pending, 0 when idle, so that tm
//     shows what was asked and cm what was reached.
//   - Interfaces: only oic.if.baseline, as the OCF Security specification
//     defines pstat and as IoTivity-Lite serves it; every representation
//     therefore carries rt and if. oic.if.rw is not offered: the
//     specification does not list it for pstat, and a client that does not
//     name an interface gets baseline anyway.
package pstat
