package ocf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// PlatformInfo is what /oic/p serves (OCF Core, oic.wk.p).
type PlatformInfo struct {
	ID               string // pi: the platform UUID
	ManufacturerName string // mnmn
	ModelNumber      string // mnmo, optional
	ManufactureDate  string // mndt, optional, YYYY-MM-DD
	FirmwareVersion  string // mnfv, optional
	OSVersion        string // mnos, optional
}

func (p PlatformInfo) validate() error {
	var errs []error
	if !uuidRe.MatchString(p.ID) {
		errs = append(errs, fmt.Errorf("ID (pi) %q is not a UUID", p.ID))
	}
	if p.ManufacturerName == "" || len(p.ManufacturerName) > 64 {
		errs = append(errs, errors.New("ManufacturerName (mnmn) must be 1..64 bytes"))
	}
	if p.ManufactureDate != "" {
		if _, err := time.Parse(time.DateOnly, p.ManufactureDate); err != nil {
			errs = append(errs, fmt.Errorf("ManufactureDate (mndt) %q is not YYYY-MM-DD", p.ManufactureDate))
		}
	}
	for name, v := range map[string]string{"mnmo": p.ModelNumber, "mnfv": p.FirmwareVersion, "mnos": p.OSVersion} {
		if len(v) > 64 {
			errs = append(errs, fmt.Errorf("%s longer than 64 bytes", name))
		}
	}
	return errors.Join(errs...)
}

type platformRep struct {
	RT   []string `cbor:"rt,omitempty"`
	IF   []string `cbor:"if,omitempty"`
	PI   string   `cbor:"pi"`
	MNMN string   `cbor:"mnmn"`
	MNMO string   `cbor:"mnmo,omitempty"`
	MNDT string   `cbor:"mndt,omitempty"`
	MNFV string   `cbor:"mnfv,omitempty"`
	MNOS string   `cbor:"mnos,omitempty"`
}

// platformResource serves /oic/p; the platform never changes at run time.
type platformResource struct {
	info PlatformInfo
}

func (p *platformResource) Href() string         { return HrefPlatform }
func (p *platformResource) Types() []string      { return []string{RTPlatform} }
func (p *platformResource) Interfaces() []string { return []string{IfR, IfBaseline} }
func (p *platformResource) Observable() bool     { return false }

func (p *platformResource) Serve(_ context.Context, req *Request) Response {
	if req.Method != codes.GET {
		return ErrorResponse(codes.MethodNotAllowed, "", "/oic/p is read-only")
	}
	rep := platformRep{
		PI: p.info.ID, MNMN: p.info.ManufacturerName, MNMO: p.info.ModelNumber,
		MNDT: p.info.ManufactureDate, MNFV: p.info.FirmwareVersion, MNOS: p.info.OSVersion,
	}
	if req.Interface == IfBaseline {
		rep.RT, rep.IF = p.Types(), p.Interfaces()
	}
	return Response{Code: codes.Content, Body: rep}
}
