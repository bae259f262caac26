package ocf

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Well-known hrefs, resource types and interfaces of the core resources.
const (
	HrefRes      = "/oic/res"
	HrefDevice   = "/oic/d"
	HrefPlatform = "/oic/p"

	RTRes      = "oic.wk.res"
	RTDevice   = "oic.wk.d"
	RTPlatform = "oic.wk.p"

	IfBaseline = "oic.if.baseline"
	IfLL       = "oic.if.ll"
	IfR        = "oic.if.r"
	IfRW       = "oic.if.rw"
)

// DeviceInfo is what /oic/d serves (OCF Core, oic.wk.d).
type DeviceInfo struct {
	ID              string // di: the device UUID; also the anchor ocf://<di> of every link
	Name            string // n: a human-friendly name
	PIID            string // piid: the protocol-independent UUID
	ICV             string // icv: spec version; default DefaultICV
	DMV             string // dmv: data model versions; default DefaultDMV
	Model           string // dmno: the model number, which selects update packages
	SoftwareVersion string // sv: the installed software version
}

func (d DeviceInfo) validate() error {
	var errs []error
	if !uuidRe.MatchString(d.ID) {
		errs = append(errs, fmt.Errorf("ID (di) %q is not a UUID", d.ID))
	}
	if !uuidRe.MatchString(d.PIID) {
		errs = append(errs, fmt.Errorf("PIID %q is not a UUID", d.PIID))
	}
	if d.Name == "" || len(d.Name) > 64 {
		errs = append(errs, errors.New("name (n) must be 1..64 bytes"))
	}
	if d.Model == "" || len(d.Model) > 64 {
		errs = append(errs, errors.New("model (dmno) must be 1..64 bytes"))
	}
	if d.SoftwareVersion == "" || len(d.SoftwareVersion) > 64 {
		errs = append(errs, errors.New("software version (sv) must be 1..64 bytes"))
	}
	return errors.Join(errs...)
}

// NewUUID returns a random (version 4) UUID in its canonical text form, for
// a device's di, piid and pi on first start.
func NewUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// deviceRep is the /oic/d representation; rt and if only on baseline.
type deviceRep struct {
	RT   []string `cbor:"rt,omitempty"`
	IF   []string `cbor:"if,omitempty"`
	DI   string   `cbor:"di"`
	N    string   `cbor:"n"`
	PIID string   `cbor:"piid"`
	ICV  string   `cbor:"icv"`
	DMV  string   `cbor:"dmv"`
	DMNO string   `cbor:"dmno"`
	SV   string   `cbor:"sv"`
}

// deviceResource serves /oic/d. sv changes at run time (after a confirmed
// upgrade), hence the lock.
type deviceResource struct {
	mu   sync.RWMutex
	info DeviceInfo
}

func (d *deviceResource) Href() string         { return HrefDevice }
func (d *deviceResource) Types() []string      { return []string{RTDevice} }
func (d *deviceResource) Interfaces() []string { return []string{IfR, IfBaseline} }
func (d *deviceResource) Observable() bool     { return true }

func (d *deviceResource) Serve(_ context.Context, req *Request) Response {
	if req.Method != codes.GET {
		return ErrorResponse(codes.MethodNotAllowed, "", "/oic/d is read-only")
	}
	d.mu.RLock()
	info := d.info
	d.mu.RUnlock()
	rep := deviceRep{
		DI: info.ID, N: info.Name, PIID: info.PIID, ICV: info.ICV,
		DMV: info.DMV, DMNO: info.Model, SV: info.SoftwareVersion,
	}
	if req.Interface == IfBaseline {
		rep.RT, rep.IF = d.Types(), d.Interfaces()
	}
	return Response{Code: codes.Content, Body: rep}
}

// setSoftwareVersion reports whether sv changed.
func (d *deviceResource) setSoftwareVersion(v string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.info.SoftwareVersion == v {
		return false
	}
	d.info.SoftwareVersion = v
	return true
}

func (d *deviceResource) snapshot() DeviceInfo {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.info
}
