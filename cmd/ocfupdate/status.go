package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// statusArgs are the arguments of "status".
type statusArgs struct {
	sel       selection
	endpoints []string
}

func statusCmd(e *env) *cobra.Command {
	var a statusArgs
	cmd := &cobra.Command{
		Use:   "status ENDPOINT... [--endpoints FILE]",
		Short: "Show the update state of devices once",
		Long: `Read each device once and show its identity, installed version and software
update resource: state, pending or running action, result, progress while
transferring, and the device's explanation (detail). "watch" follows them live.

Exits 1 when a device could not be read (it is still listed, with the error).`,
		Example: `  ocfupdate status coap://127.0.0.1:5683
  ocfupdate status --endpoints fleet.txt -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, pos []string) error {
			a.endpoints = pos
			return runStatus(cmd.Context(), e, &a)
		},
	}
	a.sel.register(cmd.Flags(), false)
	return cmd
}

func runStatus(ctx context.Context, e *env, a *statusArgs) error {
	eps, err := a.sel.endpoints(a.endpoints)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return usagef("no devices: give endpoints as arguments or with --endpoints")
	}
	devs, err := a.sel.find(ctx, eps, false)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(devs))
	failed := 0
	for _, d := range devs {
		out = append(out, toDeviceJSON(d))
		if d.Err != nil {
			failed++
		}
	}
	if err := e.emit(out, func(w io.Writer) { devicesTable(w, devs) }); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d device(s) could not be read", failed, len(devs))
	}
	return nil
}
