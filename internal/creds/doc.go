// Package creds loads the device's credential file: the pre-shared keys
// and the certificate the device's CoAPs endpoint authenticates peers with,
// the trust anchors for client certificates, and what the device presents
// to package sources. It refuses files whose permissions would let other
// users read a secret or plant a trust anchor, and keeps keys out of logs.
//
// # The credential file
//
// JSON; relative paths are relative to the file's directory:
//
//	{
//	  "psk":  [{"identity": "operator", "key_hex": "6f7065…"}],
//	  "cert": "device.pem",
//	  "key":  "device.key",
//	  "ca":   ["operators-ca.pem"],
//	  "source": {
//	    "psk": {"identity": "boiler-17", "key_hex": "…"},
//	    "ca":  ["repo-ca.pem"]
//	  }
//	}
//
// The fields:
//
//   - psk: identities and keys (16 to 64 bytes, hex) that clients of the
//     device's CoAPs endpoint may present. An identity is 1 to 128 bytes.
//   - cert, key: the device's certificate (chain) and its ECDSA P-256 key,
//     PEM; both or neither. The device presents them in certificate
//     handshakes, and to coaps package servers that ask for a client
//     certificate.
//   - ca: PEM trust anchors client certificates must chain to; required
//     with cert.
//   - source.psk: the identity and key the device presents to coaps
//     package servers. With it, coaps package sources are reached with PSK
//     only; without it, with certificates (see DialCoAPS).
//   - source.ca: extra trust anchors for package servers, https and coaps
//     alike, on top of the system roots.
//
// # Revocation
//
// LoadCRL reads a PEM file of X.509 CRLs, each of which must be signed by
// one of the client trust anchors (Credentials.ClientCACerts); Revocation
// holds the CRL in force, swaps in a new one on Reload (refusing one that
// does not load or has a lower CRL number), and refuses revoked client
// certificates in the DTLS handshake (VerifyPeerCertificate). The CRL is a
// file of its own (ocfupdated --crl), not a field of the credential file:
// it is public, fleet-wide and changes often, while the credential file is
// per device and secret. An expired CRL is still enforced, with warnings.
//
// # Permissions
//
// The credential file and the key file hold secrets: they must not be
// readable or writable by group or others (chmod 600), else Load fails with
// ErrInsecurePermissions and says which file and what to run. Certificates,
// trust anchors (and the access control file, see ReadProtected) are
// public but decide whom the device trusts: they must not be writable by
// group or others. Each file is checked on the handle it is read from.
package creds
