// Package ocf is the OCF server core: OCF resources served over CoAP/UDP
// and CoAPs (DTLS; go-coap v3 and pion/dtls v3), with the core resources
// /oic/res, /oic/d and /oic/p, Observe, block-wise responses, multicast
// discovery, and an Authorizer consulted for every request.
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
//	if _, err := srv.ListenDTLS(ctx, "udp", ":5684", ocf.DTLSConfig{
//		PSK: lookupPSK, Certificate: &deviceCert, ClientCAs: operatorCAs,
//	}); err != nil { ... }
//	go func() { ... srv.Notify("/oc/swu") after every state change ... }()
//	return srv.Serve(ctx) // until ctx is done; closes everything
//
// # From datagram to Resource.Serve
//
// Each listener is a go-coap UDP or DTLS server whose handler is handleCoAP
// (handler.go). It drops what is not a request, checks the request in the
// order of DESIGN.md's "Wire format" (method 4.05, href 4.04, body size
// 4.13, content format 4.15, Accept 4.06, if= 4.03), asks the Authorizer,
// registers or removes an observer, and calls Resource.Serve. The Response is
// encoded as CBOR, cut into a Block2 block when large (blockwise.go), and
// sent by reply.go. Every error reply carries a Diagnostic.
//
// # Security
//
// Config.Authorizer is asked for every request to a known href, with the
// Peer the listener established and observe true for an Observe
// registration; its 4.01 or 4.03 is answered with a Diagnostic, and the
// resource is not called. A change (POST, PUT, DELETE) is authorized right
// after the href is known, before its body is buffered, so a peer that may
// not change anything cannot fill the Block1 store either.
//
// A CoAPs listener (dtls.go) runs pion/dtls under go-coap's DTLS server
// with PSK (PSKCipherSuites) and/or ECDSA P-256 certificates
// (CertificateCipherSuites, client certificates required and verified
// against DTLSConfig.ClientCAs). The Peer of a request over it carries how
// the peer authenticated (AuthPSK, AuthCert) and who it is: the PSK
// identity the client sent, or the subject common name of its verified
// certificate (OCF puts "uuid:<uuid>" there). Every CoAPs peer is
// authenticated; plain CoAP peers never are.
//
// Sessions are bounded (DTLSConfig): at most MaxSessions at a time,
// handshakes included, and MaxHandshakesPerSource handshakes in progress
// per source IP; a session beyond either bound is closed before its
// handshake starts, which costs the device nothing but the ClientHello.
// A handshake is given HandshakeTimeout; a session idle for IdleTimeout
// without observers is closed. Resets and Empty messages are dropped as
// over plain CoAP. pion's log lines go to the Logger at debug level.
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
// Config.MaxObservers. Notify(href) runs Serve as a GET for each observer
// at once and queues the representation; one worker per observer sends the
// queue in order, one CON notification at a time with the next Observe
// number, so every state the resource went through is seen (an observer more
// than 16 behind loses the oldest, never the latest). The registration
// reply is rendered and the observer registered under the lock Notify
// holds, so a change is either in the reply or queued after it. Observe=1,
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
// say false, with rt, if, p.bm, eps and anchor ocf://<di>; rt= filters. The
// eps of a resource are the coaps endpoints, and the coap ones too when the
// Authorizer lets an anonymous peer read it: a secure resource advertises
// coaps only. A
// multicast request (224.0.1.187 or ff02::158, port 5683, joined when
// Config.Multicast is set) gets no reply when nothing matches, and never an
// error reply.
package ocf
