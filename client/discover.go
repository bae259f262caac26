package client

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// DiscoverOptions says where to look for devices. With neither Endpoints
// nor Multicast, Discover finds nothing.
type DiscoverOptions struct {
	// Endpoints are asked directly (coap://host:port, host:port or host).
	Endpoints []string
	// Multicast also asks every device on the local links, on 224.0.1.187
	// and ff02::158, for its software update resource.
	Multicast bool
	// Wait is how long multicast answers are collected. Default 2s.
	Wait time.Duration
	// Network restricts multicast to "udp4" (224.0.1.187) or "udp6"
	// (ff02::158); empty: both.
	Network string
	// MulticastPort is the port multicast requests go to. Default 5683,
	// the only one OCF devices listen on for discovery.
	MulticastPort int
	// Concurrency bounds how many devices are read at once. Default 16.
	Concurrency int
	// RequestTimeout bounds reading one device. Default 5s.
	RequestTimeout time.Duration
	// Security, when set, reads the devices over CoAPs (see OpenSecure).
	Security *Security
}

// Discovered is one device and what it runs: its /oic/d, and its software
// update resource (href and representation). When the device could not be
// read, Err says why and the rest holds what was learnt before.
type Discovered struct {
	Endpoint string
	Href     string
	Info     DeviceInfo
	Status   *Status
	Err      error
}

// Discover finds devices and reads each one's identity, installed version
// and update state. Explicit endpoints come first, in the order given
// (each once), then devices that answered multicast, ordered by endpoint;
// a device that answered on several addresses appears once. An error is
// returned only when multicast was asked for and could not be sent; the
// failures of single devices are in their Err.
func Discover(ctx context.Context, opts DiscoverOptions) ([]Discovered, error) {
	if opts.Wait <= 0 {
		opts.Wait = 2 * time.Second
	}
	if opts.MulticastPort == 0 {
		opts.MulticastPort = MulticastPort
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	var eps []string
	seen := map[string]bool{}
	for _, e := range opts.Endpoints {
		scheme, addr, err := SplitEndpoint(e)
		if err != nil {
			return nil, err
		}
		if ep := scheme + "://" + addr; !seen[ep] {
			seen[ep] = true
			eps = append(eps, ep)
		}
	}
	explicit := len(eps)
	if opts.Multicast {
		anns, err := multicastDiscover(ctx, opts.Network, opts.MulticastPort, opts.Wait)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(anns, func(a, b announcement) int { return strings.Compare(a.endpoint, b.endpoint) })
		seenDI := map[string]bool{}
		for _, a := range anns {
			if seen[a.endpoint] || (a.di != "" && seenDI[a.di]) {
				continue
			}
			seen[a.endpoint], seenDI[a.di] = true, true
			eps = append(eps, a.endpoint)
		}
	}
	out := make([]Discovered, len(eps))
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
			defer cancel()
			out[i] = Probe(rctx, ep, opts.Security)
		}()
	}
	wg.Wait()
	// An explicit endpoint and a multicast answer may be the same device.
	dedup := out[:0]
	ids := map[string]bool{}
	for i, d := range out {
		if i >= explicit && d.Info.ID != "" && ids[d.Info.ID] {
			continue
		}
		if d.Info.ID != "" {
			ids[d.Info.ID] = true
		}
		dedup = append(dedup, d)
	}
	return dedup, nil
}

// Probe reads one device: /oic/d and its software update resource, over
// CoAPs when sec is set. Endpoint is as given (normalised), not the coaps
// endpoint used.
func Probe(ctx context.Context, endpoint string, sec *Security) Discovered {
	r := Discovered{Endpoint: endpoint}
	if scheme, addr, err := SplitEndpoint(endpoint); err == nil {
		r.Endpoint = scheme + "://" + addr
	}
	d, err := OpenSecure(ctx, endpoint, sec)
	if err != nil {
		r.Err = err
		return r
	}
	defer d.Close()
	r.Href = d.Href()
	if r.Info, err = d.Info(ctx); err != nil {
		r.Err = fmt.Errorf("read /oic/d: %w", err)
		return r
	}
	s, err := d.Status(ctx)
	if err != nil {
		r.Err = fmt.Errorf("read %s: %w", r.Href, err)
		return r
	}
	r.Status = &s
	return r
}
