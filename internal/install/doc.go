// Package install holds the installers behind step.Installer: they take a
// package that has already been verified against the vendor's TUF keys and
// make it the device's software, so that nothing is ever half-installed and
// a power loss at any instant leaves a consistent state. The agent's
// configuration chooses one (New).
//
// # Slots (default)
//
// The slots installer keeps two slot directories and a symlink under its
// directory (DATA/slots):
//
//	DATA/slots/a/            one version, unpacked
//	DATA/slots/b/            the other
//	DATA/slots/current -> a  the one in use (absent: factory software)
//	DATA/slots/state.json    active slot and version, pending install, last outcome
//	DATA/slots/.lock         flock held during Install, Confirm and Launch
//
// Package format: a tar archive, gzip-compressed or not (detected by its
// magic), whose root holds ocfupdate.json:
//
//	{"version": "1.1.0", "model": "acme-thermo", "exec": "bin/ocfupdated"}
//
// version must equal the signed target's version; model, when both it and
// the device's are set, must match; exec (optional) names the program to
// restart into and must be an executable file of the package. Unknown fields
// are ignored. Extraction is zip-slip and tar-bomb safe: names must be
// local (no absolute paths, no ".."); only regular files, directories,
// symlinks and hard links are accepted (no devices, FIFOs or sparse files);
// symlink and hard link targets must stay inside the package, checked
// lexically per entry and by resolution at the end; all writes go through
// an os.Root so no entry can write outside the slot; duplicate entries are
// refused; pax global headers (git archive) are ignored; declared sizes count against a bound (1 GiB) before anything is
// written, and the number of entries is bounded (100 000). Set-id bits and
// owners are dropped. A package refused for its content is result 5
// (validation failure: it is not a valid package for this device even
// though it is signed); a full disk is result 3; other failures are 8.
//
// Install, with the lock held:
//
//  1. Refuse if another install awaits confirmation (ErrPending), or if
//     current points at the slot about to be wiped (state and link disagree).
//  2. Check the package's length against the signed metadata (result 5).
//  3. Record pending{slot, version, phase "unpacking"}.
//  4. Remove the inactive slot, unpack into slot.tmp (files fsynced), check
//     the manifest, fsync the directories, rename slot.tmp to slot, fsync.
//  5. Record phase "switching".
//  6. Switch current: symlink current.tmp → slot, rename over current, fsync.
//  7. Call Restart (see below).
//
// Progress reports bytes of the archive read, of its size.
//
// Restart. The caller decides how to restart and hands it over as
// SlotsConfig.Restart, called once the switch is durable with the path of the
// new exec. The usual hook re-executes (syscall.Exec) and never returns; the
// agent then finds its persisted state "upgrading" at start and calls
// Confirm in the new version. A hook that returns nil, or no hook, makes
// Install return nil and the caller calls Confirm directly; a hook error
// rolls back. So the agent's code is the same in every case: after Install
// returns nil, call Confirm; at start in "upgrading", call Confirm.
//
// Confirm runs the health check — reaching Confirm means the agent came up;
// HealthCheck.Command and HealthCheck.Probe, when set, must also succeed
// within HealthCheck.Timeout — and on success records the slot as active
// (ActiveVersion, the sv, changes only now). On failure or timeout it records
// phase "rolling-back" with the reason, points current back at the previous
// slot (or removes it, back to the factory software) and returns
// *step.Error{Result: 8, Detail: "health check failed after switching to
// 1.1.0: …; rolled back to 1.0.0"}. A cancelled ctx decides nothing: the next
// Confirm checks again. Each check started counts an attempt
// (pending.attempts); after HealthCheck.MaxAttempts the version is rolled
// back unchecked, so a check that crashes the agent cannot keep a broken
// version. A version that dies before it gets that far is caught by
// Launch, which counts starts.
//
// Crash recovery: Confirm (and Launch) finish whatever state.json says was
// interrupted, and Confirm answers the same way when repeated:
//
//	no pending            the last outcome for that version (nil or its error)
//	unpacking             discard slot.tmp; result 8, still on the old version
//	switching, current→old  the switch never happened; result 8, still on old
//	switching, current→new  run the health check as above
//	rolling-back          point current back again; result 8 with the recorded reason
//
// Install redoes an interrupted "unpacking" by itself.
//
// # Launching (boot counting)
//
// A service manager starts the same program at every boot, usually the
// factory binary, and a new version that crashes before it reaches Confirm
// counts no health check. Launch closes both gaps, as boot counting does in
// RAUC or Mender: the agent calls it first thing at start, before it opens
// its state or binds a socket, and it returns the program that should run.
// With the lock held it:
//
//  1. finishes what a crash interrupted, as Confirm does (an interrupted
//     unpack or switch ends with result 8, a rollback is completed);
//  2. if current points to a slot that awaits confirmation, counts a
//     start in pending.starts and saves it durably before returning; if
//     HealthCheck.MaxAttempts starts have already been made, or the slot's
//     exec is missing or not executable, rolls back ("1.1.0 did not come up
//     in 3 starts; rolled back to 1.0.0", result 8, which the next Confirm
//     reports) and goes on with the slot current now points to;
//  3. returns the absolute path of that slot's manifest exec, or "" when
//     there is no slot (factory software) or the package names no exec:
//     the running program stays.
//
// The caller executes the returned program unless it is itself. The
// restart by Install counts as a start too (pending.starts is 1 when the
// new version first runs), so every start is counted exactly once as long
// as a program started by Launch's caller or by Restart does not call
// Launch again for the same start: cmd/ocfupdated marks such a program in
// its environment, which also makes a loop of launches impossible. A
// confirmed slot whose exec is unusable makes Launch return an error: the
// caller logs it and stays on the running program, so that the device
// always has an agent.
//
// # Exec
//
// The exec installer runs ExecConfig.Command with the package path (for
// RAUC, SWUpdate or a vendor script) in its own process group with a
// timeout; on timeout or cancellation the whole group gets SIGTERM and,
// after a grace period, SIGKILL. Exit status 0 is success; otherwise result 8
// with a detail naming the exit status or signal and the end of the
// command's output (the last 4 KiB are kept, 1 KiB of them goes into the
// detail). Confirm runs the health check, then ConfirmCommand (e.g. "rauc
// status mark-good"); on failure RollbackCommand, once, and result 8. The
// same phases ("installing", "installed", "rolling-back") make it
// crash-safe; an install command interrupted by a crash counts as failed,
// which is right for tools that are atomic themselves.
//
// Installing never starts before the package is verified: that is the
// fetcher's contract (the unverified download never has the final name);
// the installers add a length check against the signed metadata.
package install
