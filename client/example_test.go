package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ocfupdate/ocfupdate/client"
)

// Upgrade one device and follow it to the end.
func ExampleDevice_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := client.Open(ctx, "coap://192.0.2.10:5683")
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	purl := "https://updates.example.com/repo"
	if _, err := d.Update(ctx, client.Update{PURL: &purl, Action: client.ActionUpgrade}); err != nil {
		log.Fatal(err) // a *client.DeviceError says which property and why
	}
	final, err := d.Wait(ctx, client.WatchOptions{}, func(e client.Event) {
		if p := e.Status.Percent(); p >= 0 {
			fmt.Printf("%s %d%%\n", e.Status.State, p)
		}
	})
	if err != nil {
		log.Fatal(err) // wraps client.ErrUpdateFailed for a failure result
	}
	fmt.Println(final.Detail)
}

// Roll a version out to every device that answers multicast discovery.
func ExampleRollout() {
	ctx := context.Background()
	found, err := client.Discover(ctx, client.DiscoverOptions{Multicast: true})
	if err != nil {
		log.Fatal(err)
	}
	var eps []string
	for _, f := range found {
		eps = append(eps, f.Endpoint)
	}
	waves, _ := client.ParseWaves("1,10%,50%,100%")
	rep, err := client.Rollout(ctx, client.RolloutConfig{
		PURL:        "https://updates.example.com/repo",
		Version:     "1.1.0",
		Waves:       waves,
		Concurrency: 16,
		MaxFailures: client.Threshold{N: 2, Percent: true},
	}, eps)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v halted=%v %s\n", rep.Counts, rep.Halted, rep.HaltReason)
}
