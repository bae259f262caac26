// Package tufrepo builds, signs and serves TUF repositories of software
// update packages (The Update Framework, spec 1.0, via go-tuf/v2), and holds
// the pure target-selection rule that the device's TUF client applies to
// verified metadata.
//
// # Repository layout
//
// A repository is one directory, DIR:
//
//	DIR/repo.json                     settings: default expiry per role (not served)
//	DIR/.lock                         advisory lock (flock) held by every writer
//	DIR/keys/ROLE-KEYID.pem           ed25519 private keys, PKCS#8 PEM, mode 0600,
//	                                  directory 0700; never served
//	DIR/keys/retired/                 keys replaced by RotateKey, kept for the
//	                                  operator to destroy deliberately
//	DIR/staged/targets.json           targets added since the last Publish
//	                                  (unsigned working copy; not served)
//	DIR/tls/cert.pem, key.pem         optional self-signed HTTPS pair
//	DIR/repository/                   the only directory that is served
//	  metadata/N.root.json            every root version, 1..current
//	  metadata/root.json              copy of the current root
//	  metadata/N.targets.json         every published targets version
//	  metadata/targets.json           copy of the newest targets
//	  metadata/N.snapshot.json        every published snapshot version
//	  metadata/snapshot.json          copy of the newest snapshot
//	  metadata/timestamp.json         the current timestamp
//	  targets/MODEL/VERSION/H.NAME    package files, H = hex sha256 and hex sha512
//	                                  (two hard links to one file)
//
// Repositories use consistent snapshots (root's consistent_snapshot is
// true): clients fetch N.targets.json and N.snapshot.json named by version
// and packages named by hash, so files a client may be reading are never
// rewritten. A Publish that runs while a device downloads cannot mix two
// versions, an HTTP Range or CoAP Block2 resume always continues the same
// bytes, and the ETag of a package never changes. Files are named by both
// hashes because go-tuf's updater picks the hash prefix from whichever hash
// its map iteration yields first. The unversioned targets.json and
// snapshot.json copies are for people and tools; TUF clients ignore them.
//
// # Packages and device models
//
// A package is the target path MODEL/VERSION/NAME with custom metadata
//
//	{"model": "MODEL", "version": "VERSION", "counter": N}
//
// The signed custom metadata is authoritative: selection matches the model
// by the "model" field, never by parsing the path, which only keeps the
// repository tidy. MODEL is the device's dmno. The counter is an integer
// that increases strictly with every package added for a model (by default
// the previous maximum + 1); it orders packages, so version strings need no
// common syntax. MODEL, VERSION and NAME are restricted to [A-Za-z0-9._~+-],
// at most 100 bytes, not starting with a dot, because they become path
// segments of URLs and file names without escaping.
//
// A package may also state what the device needs to take it:
//
//	{"model": "MODEL", "version": "VERSION", "counter": N, "min_ram": BYTES}
//
// min_ram (optional, an unsigned integer; absent, null or 0: no
// requirement) is the RAM the new version needs to install and run. The
// device compares it with the memory it has available before downloading
// (swupdateresult 2 when short). A malformed min_ram does not make the
// target disappear: it stays a package of its model (its counter still
// counts), and SelectTarget refuses it with ErrRequirement rather than
// fall back to an older one.
//
// # Signing protocol
//
// Keys are ed25519; key IDs are go-tuf's (sha256 of the canonical public
// key). Init creates Threshold-many keys per top-level role and version 1 of
// root, targets (empty), snapshot and timestamp. AddTarget copies the file
// into repository/targets (unreferenced until published) and records it in
// staged/targets.json. Publish then, in this order:
//
//  1. signs targets version T+1 (the staged set, or the published set when
//     nothing is staged) with the targets keys, writes N.targets.json;
//  2. signs snapshot version S+1 naming targets T+1 with its length and
//     sha256, writes N.snapshot.json;
//  3. signs timestamp version +1 naming snapshot S+1 with its length and
//     sha256, and replaces timestamp.json; this rename is the commit point;
//  4. clears the staged set.
//
// Each role is signed by every key of the role found in DIR/keys and must
// meet the role's threshold before anything is written. Publish does not
// need the root keys, so those may be kept offline (moved out of DIR/keys)
// between rotations.
//
// RotateKey replaces one key of a role: it writes root version R+1 in which
// the old key is revoked and the new one added, signed by the keys of the
// root role of both R and R+1 (so clients holding root R verify R+1 by the
// chain rule of the spec), then re-signs the published targets, snapshot and
// timestamp with bumped versions so they verify under root R+1 (the staged
// set stays staged), and moves the old private key to keys/retired.
//
// Every file is written to a temporary name in its directory, synced and
// renamed, and the directory is synced: a crash leaves either the old or the
// new file, never a half-written one. Multi-file operations write in the
// order above so that whatever a crash leaves, the last timestamp.json still
// names a complete, consistent set; running Publish again completes an
// interrupted Publish or RotateKey.
//
// # Selecting a package on the device
//
// SelectTarget takes targets metadata that the device's TUF client has
// already verified and returns the package for the device's model with the
// highest counter above the installed one. The device should persist the
// counter of the package it installed. When it does not know the counter
// (a factory image) it passes the installed version string: a target of the
// same model with exactly that version supplies the counter; failing that,
// versions are compared by semantic version precedence (an optional leading
// "v", one to three numeric parts), and targets whose version cannot be
// compared are never offered.
//
// # Serving
//
// The repository's base URL (the purl) maps to DIR/repository: go-tuf's
// updater takes purl + "/metadata" as RemoteMetadataURL and purl +
// "/targets" as RemoteTargetsURL, and RemoteTargetPath names the file of a
// package for fetchers that stream it themselves.
//
// NewHandler serves DIR/repository over HTTP(S): GET and HEAD only, no
// directory listings, no dot files, no path escaping the repository (paths
// are resolved with os.OpenInRoot), with Range, If-Range and a strong ETag
// derived from size and modification time (files are only ever replaced by
// rename, never modified in place). The CoAP server serves the same files
// over UDP or DTLS: GET with Block2 driven by the server, one block read
// with ReadAt per request (constant memory), ETag (the same 8 bytes as the
// HTTP ETag) and Size2 on every block. It uses go-coap for the message
// codec only and keeps no state between datagrams (no exchange or response
// cache: a retransmitted GET is answered again), so a download costs the
// same per block whatever its length; only a few recently opened files are
// kept open (coap_files.go).
package tufrepo
