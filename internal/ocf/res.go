package ocf

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Bits of a link's policy bitmap "bm" (OCF Core 7.8.2.1.2).
const (
	BitmapDiscoverable = 1
	BitmapObservable   = 2
)

// link is one entry of /oic/res (oic.if.ll).
type link struct {
	Href   string     `cbor:"href"`
	RT     []string   `cbor:"rt"`
	IF     []string   `cbor:"if"`
	P      linkPolicy `cbor:"p"`
	EPS    []linkEP   `cbor:"eps"`
	Anchor string     `cbor:"anchor"`
}

type linkPolicy struct {
	BM uint8 `cbor:"bm"`
}

type linkEP struct {
	EP string `cbor:"ep"`
}

// resBaseline is /oic/res with if=oic.if.baseline: the resource's own
// properties around the links.
type resBaseline struct {
	RT    []string `cbor:"rt"`
	IF    []string `cbor:"if"`
	Links []link   `cbor:"links"`
}

// resResource serves /oic/res from the Server's registry.
type resResource struct {
	s *Server
}

func (r *resResource) Href() string         { return HrefRes }
func (r *resResource) Types() []string      { return []string{RTRes} }
func (r *resResource) Interfaces() []string { return []string{IfLL, IfBaseline} }
func (r *resResource) Observable() bool     { return false }

// Serve lists the discoverable resources, /oic/res included, sorted by href.
// rt= queries filter: a link matches when it has any of the asked types. A
// multicast request that matches nothing gets no reply at all.
func (r *resResource) Serve(_ context.Context, req *Request) Response {
	if req.Method != codes.GET {
		return ErrorResponse(codes.MethodNotAllowed, "", "/oic/res is read-only")
	}
	var rts []string
	for _, q := range req.Query {
		if v, ok := strings.CutPrefix(q, "rt="); ok {
			rts = append(rts, v)
		}
	}
	links := r.links(rts, isLoopback(req.Peer.Addr))
	if len(links) == 0 && req.Multicast {
		return Response{NoReply: true}
	}
	if req.Interface == IfBaseline {
		return Response{Code: codes.Content, Body: []resBaseline{{RT: r.Types(), IF: r.Interfaces(), Links: links}}}
	}
	return Response{Code: codes.Content, Body: links}
}

// isLoopback reports whether a peer address (host:port) is a loopback one.
func isLoopback(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// links builds the links of the discoverable resources with one of rts (all
// when rts is empty). Loopback endpoints are listed only to loopback peers:
// to anyone else they would point at themselves.
func (r *resResource) links(rts []string, loopbackPeer bool) []link {
	r.s.mu.RLock()
	res := make([]Resource, 0, len(r.s.resources))
	for _, x := range r.s.resources {
		res = append(res, x)
	}
	r.s.mu.RUnlock()
	slices.SortFunc(res, func(a, b Resource) int { return strings.Compare(a.Href(), b.Href()) })

	anchor := "ocf://" + r.s.cfg.Device.ID
	var plain, secure []linkEP
	for _, e := range r.s.endpoints("") {
		if !loopbackPeer && e.ip.IsLoopback() {
			continue
		}
		if e.scheme == "coaps" {
			secure = append(secure, linkEP{EP: e.String()})
		} else {
			plain = append(plain, linkEP{EP: e.String()})
		}
	}
	links := make([]link, 0, len(res))
	for _, x := range res {
		if d, ok := x.(Discoverable); ok && !d.Discoverable() {
			continue
		}
		types := x.Types()
		if len(rts) > 0 && !slices.ContainsFunc(types, func(t string) bool { return slices.Contains(rts, t) }) {
			continue
		}
		bm := uint8(BitmapDiscoverable)
		if x.Observable() {
			bm |= BitmapObservable
		}
		// A resource an anonymous peer may not read is a secure one: it
		// lists only its coaps endpoints.
		eps := make([]linkEP, 0, len(plain)+len(secure))
		if r.s.authorize(Peer{}, x.Href(), codes.GET, false) == codes.Empty {
			eps = append(eps, plain...)
		}
		eps = append(eps, secure...)
		links = append(links, link{
			Href: x.Href(), RT: types, IF: x.Interfaces(),
			P: linkPolicy{BM: bm}, EPS: eps, Anchor: anchor,
		})
	}
	return links
}
