package ocf

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	coapNet "github.com/plgd-dev/go-coap/v3/net"
)

// OCF multicast discovery (OCF Core 10.2): the "All CoAP Nodes" groups, on
// port 5683 only. Exported for discovery clients.
const (
	MulticastIPv4 = "224.0.1.187"
	MulticastIPv6 = "ff02::158" // link-local scope
	MulticastPort = 5683
)

// joinDiscoveryGroups joins the group of the socket's family on every
// interface that is up and multicast-capable. A socket bound to a unicast
// address does not receive group traffic; it joins anyway (harmless) and a
// warning says why discovery will not reach it. It fails only when no
// interface could join.
func joinDiscoveryGroups(conn *coapNet.UDPConn, laddr *net.UDPAddr, log *slog.Logger) error {
	group := &net.UDPAddr{IP: net.ParseIP(MulticastIPv4), Port: MulticastPort}
	if laddr.IP.To4() == nil && len(laddr.IP) == net.IPv6len {
		group.IP = net.ParseIP(MulticastIPv6)
	}
	if !laddr.IP.IsUnspecified() {
		log.Warn("multicast discovery needs a wildcard bind; this listener is bound to a unicast address", "addr", laddr.String())
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("join %s: list interfaces: %w", group.IP, err)
	}
	var errs []error
	joined := 0
	for i := range ifaces {
		ifi := &ifaces[i]
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if err := conn.JoinGroup(ifi, group); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
			continue
		}
		joined++
		log.Debug("joined multicast group", "group", group.IP.String(), "interface", ifi.Name)
	}
	if joined == 0 {
		if len(errs) == 0 {
			errs = append(errs, errors.New("no interface is up and multicast-capable"))
		}
		return fmt.Errorf("join %s: %w", group.IP, errors.Join(errs...))
	}
	return nil
}
