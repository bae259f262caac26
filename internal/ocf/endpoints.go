package ocf

import (
	"net"
	"net/netip"
	"strconv"
)

// Endpoints returns the URLs the Server can be reached at, one per listener
// and address, e.g. "coap://127.0.0.1:40123" or "coap://[::1]:40123". A
// listener bound to a wildcard address lists the addresses of every
// interface that is up, of the listener's family ("udp" on "::" is dual
// stack: both). IPv6 link-local addresses are listed without a zone: a zone
// names an interface of this host, which means nothing to a peer.
func (s *Server) Endpoints() []string {
	eps := s.endpoints("")
	out := make([]string, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}

// endpoint is one address a listener is reachable at.
type endpoint struct {
	scheme string
	ip     netip.Addr
	port   int
}

func (e endpoint) String() string { return e.scheme + "://" + hostPort(e.ip, e.port) }

// endpoints lists the endpoints of listeners with scheme (all when empty),
// without duplicates. It is the one place /oic/res gets eps from, so a
// secure listener only needs a scheme of its own.
func (s *Server) endpoints(scheme string) []endpoint {
	s.mu.RLock()
	ls := append([]*listener(nil), s.listeners...)
	s.mu.RUnlock()
	var out []endpoint
	seen := make(map[endpoint]bool)
	for _, l := range ls {
		if scheme != "" && l.scheme != scheme {
			continue
		}
		for _, ip := range listenerIPs(l) {
			e := endpoint{scheme: l.scheme, ip: ip.WithZone(""), port: l.addr.Port}
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// listenerIPs returns the listener's own address, or for a wildcard bind
// the addresses of the interfaces that are up.
func listenerIPs(l *listener) []netip.Addr {
	ip, ok := netip.AddrFromSlice(l.addr.IP)
	if ok {
		ip = ip.Unmap()
	}
	if ok && !ip.IsUnspecified() {
		return []netip.Addr{ip.WithZone(l.addr.Zone)}
	}
	want4 := l.network != "udp6"
	want6 := l.network == "udp6" || (l.network == "udp" && (!ok || ip.Is6()))
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			switch {
			case ip.Is4() && want4:
				out = append(out, ip)
			case ip.Is6() && want6:
				if ip.IsLinkLocalUnicast() {
					ip = ip.WithZone(ifi.Name)
				}
				out = append(out, ip)
			}
		}
	}
	return out
}

// hostPort formats ip and port for a URL authority.
func hostPort(ip netip.Addr, port int) string {
	if ip.Is4() {
		return ip.String() + ":" + strconv.Itoa(port)
	}
	return "[" + ip.WithZone("").String() + "]:" + strconv.Itoa(port)
}
