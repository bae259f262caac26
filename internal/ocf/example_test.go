package ocf_test

import (
	"context"
	"log"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// thermo is a minimal read-only resource.
type thermo struct{}

func (thermo) Href() string         { return "/thermo" }
func (thermo) Types() []string      { return []string{"oic.r.temperature"} }
func (thermo) Interfaces() []string { return []string{ocf.IfR, ocf.IfBaseline} }
func (thermo) Observable() bool     { return true }
func (thermo) Serve(_ context.Context, req *ocf.Request) ocf.Response {
	if req.Method != codes.GET {
		return ocf.ErrorResponse(codes.MethodNotAllowed, "", "read-only")
	}
	return ocf.Response{Body: map[string]any{"temperature": 21.5, "units": "C"}}
}

func ExampleServer() {
	di, _ := ocf.NewUUID()
	piid, _ := ocf.NewUUID()
	pi, _ := ocf.NewUUID()
	srv, err := ocf.NewServer(ocf.Config{
		Device:   ocf.DeviceInfo{ID: di, PIID: piid, Name: "Thermostat", Model: "t-1", SoftwareVersion: "1.0.0"},
		Platform: ocf.PlatformInfo{ID: pi, ManufacturerName: "ACME"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Handle(thermo{}); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := srv.Listen(ctx, "udp4", "127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	log.Println("serving at", srv.Endpoints())
	srv.Notify("/thermo") // after every change of the temperature
	cancel()              // e.g. on SIGTERM
	if err := srv.Serve(ctx); err != nil {
		log.Fatal(err)
	}
}
