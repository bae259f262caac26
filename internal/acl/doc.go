// Package acl is the device's access control, shaped like OCF's
// /oic/sec/acl2: a list of access control entries (ACEs), each granting a
// subject a CRUDN permission on some resources. A List is the
// ocf.Authorizer of the device's server, consulted for every request,
// Observe registrations included.
//
// # Entries
//
// The ACL file is a JSON list of entries:
//
//	[
//	  {"subject": {"conntype": "anon-clear"}, "resources": ["/oic/res", "/oic/d", "/oic/p"], "permission": 2},
//	  {"subject": {"psk": "operator"},        "resources": ["*"],                            "permission": 31},
//	  {"subject": {"cn": "monitoring"},       "resources": ["/oc/swu", "/oic/sec/pstat"],    "permission": 2},
//	  {"subject": {"uuid": "8f0c3a52-8d7e-4bb1-9d1a-0c3f1e2d4b5a"}, "resources": ["/oc/swu"], "permission": 6}
//	]
//
// A subject names exactly one of:
//
//   - conntype "anon-clear": every peer, authenticated or not (a grant to
//     anonymous peers is a grant to everybody, as in IoTivity-Lite);
//   - conntype "auth-crypt": every peer authenticated over CoAPs;
//   - psk: a peer that authenticated with that PSK identity;
//   - cn: a peer whose verified client certificate has that subject common
//     name;
//   - uuid: a peer whose certificate CN is "uuid:<uuid>" (as OCF names
//     devices and operators) or whose PSK identity is the UUID, with or
//     without the "uuid:" prefix; compared case-insensitively.
//
// A resource is an href ("/oc/swu"), "*" for every resource, or a prefix
// ending in "/*" ("/oic/*" covers /oic/res, /oic/d, ...).
//
// The permission is OCF's CRUDN bitmask: 1 Create (PUT), 2 Retrieve (GET,
// and Observe registrations), 4 Update (POST), 8 Delete (DELETE), 16 Notify.
// Notify is accepted for OCF compatibility and grants nothing by itself: an
// observer must be able to retrieve what it observes, so a registration
// needs Retrieve, exactly like a GET.
//
// # Decisions
//
// A request is allowed when the union of the permissions of the entries
// whose subject and resources match has the method's bit. Otherwise it is
// answered 4.01 Unauthorized when the peer is not authenticated (plain
// CoAP: authenticating might help) and 4.03 Forbidden when it is. Nothing
// else happens: the resource is not called.
//
// # Defaults
//
// Discovery is always open: every List carries DiscoveryEntry (anon-clear
// may retrieve /oic/res, /oic/d and /oic/p), which OCF discovery and the
// agent's own post-update health check need. Without an ACL file the
// device uses Default: discovery, Retrieve on everything for any
// authenticated peer, and full access for the PSK identities of the
// credential file. Certificates get no more than Retrieve by default
// because a CA vouches for who a peer is, not for what it may do; the same
// vendor CA often signs every device of a fleet. Open is the development
// switch that grants everybody everything.
package acl
