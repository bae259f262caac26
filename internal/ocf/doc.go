// Package ocf is the OCF server core: OCF resources served over CoAP/UDP
// (go-coap v3), with the core resources /oic/res, /oic/d and /oic/p,
// Observe, block-wise responses and multicast discovery.
//
// # Using it
//
//	srv, err := ocf.NewServer(ocf.Config{
//		Logger:    logger,
//		Multicast: true,
//		Device: ocf.DeviceInfo{
//			ID: di, PIID: piid, Name: "Boiler", Model: "boiler-2",
//			SoftwareVersion: "1.4.0",
//		},
//		Platform: ocf.PlatformInfo{ID: pi, ManufacturerName: "ACME", ManufactureDate: "2024-05-01"},
//	})
//	if err != nil { ... }
//	if err := srv.Handle(swuResource); err != nil { ... } // implements ocf.Resource
//	if _, err := srv.Listen(ctx, "udp4", ":5683"); err != nil { ... }
//	if _, err := srv.Listen(ctx, "udp6", "[::]:5683"); err != nil { ... }
//	go func() { ... srv.Notify("/oc/swu") after every state change ... }()
//	return srv.Serve(ctx) // until ctx is done; closes everything
//
// # From datagram to Resource.Serve
//
// Each listener is a go-coap UDP server whose handler is handleCoAP
// (handler.go). It drops what is not a request, checks the request in the
// order of DESIGN.md's "Wire format" (method 4.05, href 4.04, body size
// 4.13, content format 4.15, Accept 4.06, if= 4.03), asks the Authorizer,
// registers or removes an observer, and calls Resource.Serve. The Response is
// encoded as CBOR, cut into a Block2 block when large (blockwise.go), and
// sent by reply.go. Every error reply carries a Diagnostic.
//
// # Wire format
//
// Requests may carry content format 10000 (application/vnd.ocf+cbor) or 60
// (application/cbor). A request speaking OCF (content format 10000, or
// option 2049 or 2053) is answered in 10000 with OCF-Content-Format-Version
// (2053) = 2048; a plain CoAP request is answered in 60 and without option
// 2053, which libcoap's coap-client would reject. An explicit Accept of 60
// or 10000 wins. Importing the package registers options 2049 and 2053 with
// go-coap, which otherwise answers them 4.02 Bad Option.
//
// A CON request gets a piggybacked response, a NON request a NON response.
// Resets, ACKs and Empty messages are never answered (a CoAP ping gets the
// Reset RFC 7252 asks for); a Reset that answers a notification
// deregisters its observer.
//
// # Observe
//
// A GET with Observe=0 on an Observable resource registers the peer
// (address and token) with the interface and query it asked for, up to
// Config.MaxObservers. Notify(href) re-runs Serve as a GET for each
// observer and sends a CON notification with the next Observe number; one
// worker per observer sends them in order and collapses bursts. Observe=1,
// a Reset, a failed or unacknowledged notification, or an error
// representation (sent once, without Observe) ends the registration.
//
// # Block-wise
//
// Responses larger than 1024 bytes (or the block size the client asks for)
// go out block by block (RFC 7959 Block2), statelessly: each block request
// re-runs Serve and slices the deterministic encoding; an ETag lets clients
// detect a representation that changed between blocks. A large response to
// POST, PUT or DELETE is kept briefly for its later blocks instead, since
// running the request again would repeat the change. Request bodies split
// into Block1 blocks are reassembled up to Config.MaxBodySize (block1.go).
//
// # Discovery
//
// /oic/res lists every resource whose optional Discoverable method does not
// say false, with rt, if, p.bm, eps and anchor ocf://<di>; rt= filters. A
// multicast request (224.0.1.187 or ff02::158, port 5683, joined when
// Config.Multicast is set) gets no reply when nothing matches, and never an
// error reply.
package ocf
