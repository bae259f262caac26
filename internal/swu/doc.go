// Package swu is the oic.r.softwareupdate resource: its properties, their
// wire names, the validation of an UPDATE and the representation served on
// GET. It holds no state of its own: a Controller (the agent) owns the state
// and applies validated updates through the state machine.
//
// The draft (OCF 2.3 CR 2303) leaves a lot open. What this package does where
// it is silent or contradicts itself:
//
//   - Writable properties are purl, swupdateaction and updatetime. The draft's
//     spellings updateTime (property) and isv (action) are accepted on UPDATE
//     and mean updatetime and isvv; sending both updatetime and updateTime is
//     an error rather than a guess. Everything else, including the baseline
//     properties rt, if, n and id (the draft lists n and id as read-write, but
//     the resource has no name of its own to change), is read-only, and an
//     UPDATE naming a read-only or unknown property is refused as a whole.
//   - Validation is all-or-nothing and deterministic: properties are checked
//     in name order and the first problem is reported as an *Error naming the
//     property; nothing is applied unless the whole UPDATE is valid.
//   - updatetime is an RFC 3339 date-time with a zone ("Z" or an offset;
//     lowercase t and z are accepted as RFC 3339 allows). The draft's own
//     examples use minute precision ("2030-01-09T14:30Z"), so that form is
//     accepted too. A time without a zone is refused: the device cannot know
//     which wall clock the client meant. Times are normalised to UTC, so the
//     schedule is an absolute instant, and are echoed back in UTC. "now" runs
//     the action at once; "none" cancels the schedule. A time before the
//     device's clock is refused ("updatetime is in the past"); the draft lets
//     the implementation choose, and a silent no-op would look like success.
//   - Combinations: a non-idle swupdateaction needs an updatetime (a time or
//     "now") in the same UPDATE, because an action without a time has no
//     meaning in the draft and guessing "now" could upgrade a device at the
//     wrong moment. "none" with a non-idle action is contradictory and refused.
//     swupdateaction idle alone, or with "none", cancels. idle with a time or
//     "now" is refused as ambiguous (reschedule with updatetime alone; cancel
//     with idle alone). updatetime alone (re)schedules the pending action; the
//     Controller refuses it when nothing is pending. purl may be set alone.
//   - purl: the draft caps it at 64 characters, too short for real repository
//     URLs (a TUF repository on a CDN easily needs more), so the limit is 512
//     bytes (ParseOptions.MaxPURLLength). An UPDATE accepts "" (use the
//     built-in vendor URL) or an absolute URL with a scheme and a host, no
//     whitespace or control characters, a valid port and no user information
//     (purl is readable by every client that may read the resource, so it
//     must not carry credentials). Any well-formed scheme is accepted on
//     UPDATE: which schemes work depends on the device's configuration when
//     the action runs, and the draft has result 7 for exactly this, so
//     ResolvePURL reports it then.
//   - The representation always carries nv ("" when no new version is known)
//     and x.org.ocfupdate.detail; lastupdate and signed are omitted while
//     unknown (zero time, empty string) rather than sent as invalid values;
//     updatetime is "none" when nothing was ever scheduled. An empty Action or
//     State in Properties is represented as "idle".
//   - Errors: an invalid UPDATE is 4.00 Bad Request with the diagnostic
//     {"error": message, "property": name}; a Controller refusal in the
//     current state (an *Error from Apply) is 4.00 as well; any other
//     Controller error is 5.00, or 5.03 when the request's context ended
//     (shutdown); PUT and DELETE are 4.05.
package swu
