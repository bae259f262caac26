// Package tufclient is the device's TUF client: it implements step.Checker
// (isac) and step.Fetcher (isvv) over a TUF repository at the purl, using
// go-tuf's updater for metadata and internal/fetch for every byte on the
// wire (https and coaps; http and coap when the Downloader allows insecure
// sources).
//
// # Trust model
//
// The device trusts exactly one root of trust: the root.json it was built or
// configured with (Config.TrustedRoot). Every check and every fetch runs the
// full TUF client workflow against the purl: the root chain is followed
// (each new root signed by the previous one and by itself, so key rotations
// are picked up), then a fresh timestamp, the snapshot it names and the
// targets the snapshot names, each checked for its signature threshold,
// version, expiry and, where the referring role signed them, length and
// hash. Only then is a package chosen, from the verified targets alone:
// the target whose signed custom metadata names the device's model and has
// the highest counter above the installed one (tufrepo.SelectTarget). The
// counter comes from the repository's signed metadata and orders packages;
// the installed counter is what the agent persisted when it installed one.
// A package is streamed to disk and accepted only when its length and hashes
// equal the ones the freshly verified targets metadata signed; fetching
// refreshes the metadata again rather than trusting what a check saw.
//
// Attacks end with a result, never with an install:
//
//   - tampered or truncated packages, wrong lengths, endless data, metadata
//     signed by unknown keys or below threshold, expired metadata (freeze)
//     and metadata versions older than ones already seen (rollback of the
//     repository) are result 5 (validation failure);
//   - a repository that only offers older or equal counters, or packages for
//     other models, has nothing newer: found=false, never a downgrade.
//
// # Metadata cache
//
// Verified metadata is kept in Config.CacheDir, one subdirectory per purl
// and trusted root (named by a hash of both), so switching repositories or
// re-provisioning the trust root never mixes metadata. The cache is what
// gives rollback protection across runs: go-tuf refuses a timestamp,
// snapshot or targets version below the cached one, and a root chain starts
// from the newest cached root rather than from the configured one (once a
// device has seen root N it never trusts root N-1's keys again); a cached
// root older than the configured one is ignored. A device image shipping
// another root gets a new cache, since the configured root is part of the
// cache's name. A cached file that does not parse (a crash while go-tuf
// wrote it) is dropped, and the refresh downloads it again.
//
// # Results
//
// Failures are *step.Error values with the swupdateresult: the one the
// Downloader chose for transport failures (4 unreachable or lost, 400–599
// the HTTP status or CoAP code, 6 malformed URL, 7 unsupported scheme, 3
// not enough space, 5 length or hash mismatch), 5 for every TUF
// verification failure, 2 for a package that needs more RAM than the
// device has available, and 8 for anything else.
//
// # Requirements
//
// A package's signed custom metadata may state the RAM the new version
// needs (min_ram, bytes). Fetch compares it with Config.MemAvailable
// (MemAvailable of /proc/meminfo) after refreshing the metadata and before
// it downloads or removes anything: less is result 2 with a detail naming
// both amounts; an unknown amount is logged and the download goes ahead. A
// malformed min_ram on the package the device would take is result 5, at
// the check already, like any other unusable signed metadata; the device
// does not fall back to an older package.
package tufclient
