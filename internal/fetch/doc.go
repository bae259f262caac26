// Package fetch downloads packages and TUF metadata over https and coaps
// (http and coap only when insecure sources are allowed): streaming to disk
// in constant memory, resuming after a dropped connection or a killed
// process, bounded by the length from signed metadata, and mapping every
// failure to a swupdateresult.
//
// # Downloads
//
// [Downloader.Download] writes to dst+".part" and renames to dst only after
// the length and every supported hash (sha256, sha512) matched. A .part left
// by an earlier run is resumed: its bytes are hashed again (the hash state is
// not persisted) and the transfer continues from its size, with an HTTP
// "Range: bytes=N-" request or, over CoAP, from the Block2 block that holds
// byte N. Because no validator (ETag) survives a restart, a resumed download
// whose final hash does not match is retried once from byte zero before it
// fails: a stale .part costs one extra download, never a false failure.
//
// Over CoAP the Block2 transfer is driven here, one block per request, and
// go-coap's own block-wise layer is disabled: go-coap assembles a whole body
// in memory, which a package does not fit in. Every block's payload goes to
// disk before the next one is asked for. A changed ETag between blocks means
// the resource changed under us: the .part is discarded and the transfer
// starts again from block 0 (at most a few times). Size2, when the server
// sends it, is checked against the expected length before any byte is
// written. Block numbers are 20 bits, so with 1024-byte blocks a CoAP
// package can be at most about 1 GiB.
//
// # Bounds
//
// Nothing is unbounded. A server that sends more bytes than the metadata
// length (endless data) is cut off as soon as the first byte too many
// arrives. [Config.Timeout] bounds every wait for the server (connecting,
// the response headers, the next bytes of the body, each CoAP block); it is
// a stall timeout, not a limit on the whole transfer, so a large package on
// a slow link still completes. Failed attempts are retried with exponential
// backoff and jitter between [Config.BackoffMin] and [Config.BackoffMax], at
// most [Config.MaxRetries] times in a row without progress: an attempt that
// got further than any before it resets the count, so a link that drops
// every few megabytes still finishes, while a server that always fails at
// the same point gives up.
//
// # Results
//
// Every failure is a *step.Error whose Result is the swupdateresult:
//
//	3        not enough free space for the rest of the package (checked before
//	         the transfer with statfs, with a margin) or ENOSPC while writing
//	4        the server cannot be reached, the connection was lost, or it
//	         stalled, and retries are exhausted
//	5        wrong length (declared or received), more bytes than allowed,
//	         wrong hash, or a server certificate that does not verify
//	6        malformed URL
//	7        unsupported scheme (or http/coap when insecure sources are not
//	         allowed), coaps without DTLS credentials, a server that does not
//	         speak TLS or does not follow Block2, a redirect that cannot be
//	         followed, or a response a download cannot use (HTTP 1xx/3xx/other
//	         2xx, CoAP other 2.xx)
//	8        a local file error other than a full disk (the agent's default)
//	400–599  the HTTP status, or the CoAP code as class*100+detail (4.04 → 404)
//
// Over coaps the DTLS dial function decides how its own failures count: a
// *step.Error it returns is used as is, anything else is a lost connection.
// A server that rejects a pre-shared key stays silent, so to the device a
// wrong key looks like result 4.
//
// 4xx statuses are never retried: the answer will not change. 5xx statuses
// (HTTP and CoAP) are retried like a lost connection, since servers and
// proxies return them while restarting or overloaded; when retries are
// exhausted the result is the last status, not 4, because the status says
// more. An untrusted, expired or misnamed TLS certificate is result 5, not
// 4, and is not retried: the source failed validation, and telling the
// operator "connection lost" would send them looking at the network.
//
// Every result-5 outcome deletes the .part (its content is suspect), and so
// does any failure that leaves it empty; every other failure, and
// cancellation, keeps it for the next call.
// Cancelling ctx is not a failure: Download returns an error that matches
// context.Canceled (or DeadlineExceeded) with errors.Is, not a *step.Error.
//
// # TUF
//
// [Downloader.TUFFetcher] adapts [Downloader.Get] to go-tuf's fetcher
// interface for metadata. Statuses carry a *metadata.ErrDownloadHTTP (the
// updater treats 404 on the next root version as "no newer root") and
// too-long bodies a *metadata.ErrDownloadLengthMismatch, both reachable with
// errors.As through the *step.Error. go-tuf downloads targets into memory,
// so packages should be fetched with Download using the target's length and
// hashes, not through go-tuf's DownloadTarget.
package fetch
