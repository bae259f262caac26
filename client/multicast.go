package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"golang.org/x/net/ipv4"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// OCF multicast discovery (OCF Core 10.2): a NON GET of /oic/res to the
// "All CoAP Nodes" groups. Devices with no matching resource stay silent.
const (
	MulticastIPv4 = ocf.MulticastIPv4
	MulticastIPv6 = ocf.MulticastIPv6
	MulticastPort = ocf.MulticastPort
)

// announcement is one device's answer to a multicast discovery.
type announcement struct {
	endpoint string // coap://source of the answer
	di       string // from the links' anchor, to merge answers of one device
}

// multicastRequest encodes GET /oic/res?rt=oic.r.softwareupdate as a NON.
func multicastRequest(token []byte) ([]byte, error) {
	mid := make([]byte, 2)
	if _, err := rand.Read(mid); err != nil {
		return nil, err
	}
	m := message.Message{Type: message.NonConfirmable, Code: codes.GET,
		MessageID: int32(mid[0])<<8 | int32(mid[1]), Token: token}
	buf := make([]byte, 64)
	var err error
	if m.Options, _, err = m.Options.SetPath(buf, ocf.HrefRes); err != nil {
		return nil, err
	}
	m.Options = m.Options.Add(message.Option{ID: message.URIQuery, Value: []byte("rt=" + ResourceType)})
	n, err := coder.DefaultCoder.Size(m)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		return nil, err
	}
	return b, nil
}

// multicastDiscover sends the discovery request to both groups on every
// interface that is up and multicast-capable, and collects answers for
// wait. It fails only when the request could be sent nowhere.
func multicastDiscover(ctx context.Context, network string, port int, wait time.Duration) ([]announcement, error) {
	if network != "" && network != "udp4" && network != "udp6" {
		return nil, fmt.Errorf("multicast discovery: network %q: want udp4, udp6 or empty for both", network)
	}
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	req, err := multicastRequest(token)
	if err != nil {
		return nil, fmt.Errorf("multicast discovery: %w", err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("multicast discovery: list interfaces: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()

	var (
		mu    sync.Mutex
		found []announcement
		wg    sync.WaitGroup
		sent  int
		errs  []error
	)
	collect := func(c *net.UDPConn) {
		defer wg.Done()
		stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
		defer stop()
		buf := make([]byte, 4096)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return // deadline (the wait is over) or closed
			}
			if a, ok := parseAnnouncement(buf[:n], token, from); ok {
				mu.Lock()
				found = append(found, a)
				mu.Unlock()
			}
		}
	}
	for _, fam := range []struct {
		network, group string
	}{{"udp4", MulticastIPv4}, {"udp6", MulticastIPv6}} {
		if network != "" && network != fam.network {
			continue
		}
		c, err := net.ListenUDP(fam.network, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fam.network, err))
			continue
		}
		defer c.Close()
		n, err := sendOnInterfaces(c, fam.network, fam.group, port, ifaces, req)
		sent += n
		if err != nil {
			errs = append(errs, err)
		}
		wg.Add(1)
		go collect(c)
	}
	wg.Wait()
	if sent == 0 {
		if len(errs) == 0 {
			errs = append(errs, errors.New("no interface is up and multicast-capable"))
		}
		return nil, fmt.Errorf("multicast discovery: %w", errors.Join(errs...))
	}
	return found, nil
}

// sendOnInterfaces sends req to group:port out of every usable interface
// and returns how many sends succeeded.
func sendOnInterfaces(c *net.UDPConn, network, group string, port int, ifaces []net.Interface, req []byte) (int, error) {
	var errs []error
	sent := 0
	p4 := ipv4.NewPacketConn(c)
	for i := range ifaces {
		ifi := &ifaces[i]
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		dst := &net.UDPAddr{IP: net.ParseIP(group), Port: port}
		if network == "udp4" {
			if err := p4.SetMulticastInterface(ifi); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", group, ifi.Name, err))
				continue
			}
			_ = p4.SetMulticastLoopback(true) // devices on this host answer too
		} else {
			dst.Zone = ifi.Name // a link-local group is sent on the zone's link
		}
		if _, err := c.WriteToUDP(req, dst); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", group, ifi.Name, err))
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// parseAnnouncement reads a reply to our request: 2.05 with links of the
// software update resource.
func parseAnnouncement(b, token []byte, from *net.UDPAddr) (announcement, bool) {
	m := message.Message{Options: make(message.Options, 0, 16)}
	if _, err := coder.DefaultCoder.Decode(b, &m); err != nil {
		return announcement{}, false
	}
	if string(m.Token) != string(token) || m.Code != codes.Content {
		return announcement{}, false
	}
	var links []Link
	if err := decodeLoose(m.Payload, &links); err != nil {
		return announcement{}, false
	}
	for _, l := range links {
		for _, rt := range l.RT {
			if rt == ResourceType {
				host := from.IP.String()
				if from.Zone != "" {
					host += "%" + from.Zone
				}
				return announcement{
					endpoint: "coap://" + net.JoinHostPort(host, strconv.Itoa(from.Port)),
					di:       strings.TrimPrefix(l.Anchor, "ocf://"),
				}, true
			}
		}
	}
	return announcement{}, false
}
