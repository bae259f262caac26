package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// discoverArgs are the arguments of "discover".
type discoverArgs struct {
	sel       selection
	endpoints []string
	multicast bool
}

func discoverCmd(e *env) *cobra.Command {
	var a discoverArgs
	cmd := &cobra.Command{
		Use:   "discover [ENDPOINT...] [--endpoints FILE] [--multicast]",
		Short: "Find devices and show what each runs and where its update stands",
		Long: `Find devices and show, for each, its ID, name, model, installed version
(sv), endpoint and update state.

Without endpoints, discover asks every device on the local links by multicast
(224.0.1.187 and ff02::158, port 5683) and lists those that answer within
--wait. With endpoints (arguments or --endpoints FILE) it asks those only,
unless --multicast is given too. Each device is then read: /oic/d and its
software update resource, found through /oic/res by its resource type.

Exits 1 when a device named explicitly could not be read (it is still listed,
with the error).`,
		Example: `  ocfupdate discover
  ocfupdate discover coap://192.0.2.10:5683 192.0.2.11
  ocfupdate discover --endpoints fleet.txt -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.endpoints = pos
			return runDiscover(cmd.Context(), e, &a)
		},
	}
	a.sel.register(cmd.Flags(), false)
	cmd.Flags().BoolVar(&a.multicast, "multicast", false, "also discover by multicast when endpoints are given")
	return cmd
}

func runDiscover(ctx context.Context, e *env, a *discoverArgs) error {
	eps, err := a.sel.endpoints(a.endpoints)
	if err != nil {
		return err
	}
	devs, err := a.sel.find(ctx, eps, a.multicast || len(eps) == 0)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(devs))
	failed := 0
	for i, d := range devs {
		out = append(out, toDeviceJSON(d))
		if d.Err != nil && i < len(eps) {
			failed++
		}
	}
	if err := e.emit(out, func(w io.Writer) { devicesTable(w, devs) }); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return withCode(exitInterrupted, errors.New("interrupted"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d device(s) could not be read", failed, len(eps))
	}
	return nil
}
