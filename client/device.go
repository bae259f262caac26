package client

import (
	"context"
	"fmt"
	"time"

	"github.com/ocfupdate/ocfupdate/internal/ocf"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Link is one entry of /oic/res.
type Link struct {
	Href   string     `cbor:"href"`
	RT     []string   `cbor:"rt"`
	If     []string   `cbor:"if"`
	Policy linkPolicy `cbor:"p"`
	Eps    []endpoint `cbor:"eps"`
	Anchor string     `cbor:"anchor"`
}

type linkPolicy struct {
	BM uint64 `cbor:"bm"`
}

type endpoint struct {
	EP string `cbor:"ep"`
}

// Links reads /oic/res, filtered by resource type when rt is not empty.
func (c *Conn) Links(ctx context.Context, rt string) ([]Link, error) {
	var q []string
	if rt != "" {
		q = append(q, "rt="+rt)
	}
	r, err := c.Get(ctx, ocf.HrefRes, q...)
	if err != nil {
		return nil, err
	}
	var links []Link
	if err := decodeLoose(r.Body, &links); err != nil {
		return nil, fmt.Errorf("%s/oic/res: %w", c.endpoint, err)
	}
	return links, nil
}

// FindResource returns the href of the first resource of type rt.
func (c *Conn) FindResource(ctx context.Context, rt string) (string, error) {
	links, err := c.Links(ctx, rt)
	if err != nil {
		return "", err
	}
	for _, l := range links {
		for _, t := range l.RT {
			if t == rt {
				return l.Href, nil
			}
		}
	}
	return "", fmt.Errorf("%s: %s: %w", c.endpoint, rt, ErrNotFound)
}

// DeviceInfo is /oic/d.
type DeviceInfo struct {
	ID              string `cbor:"di" json:"di"`
	Name            string `cbor:"n" json:"n"`
	PIID            string `cbor:"piid" json:"piid"`
	Model           string `cbor:"dmno" json:"dmno"`
	SoftwareVersion string `cbor:"sv" json:"sv"`
	ICV             string `cbor:"icv" json:"icv"`
	DMV             string `cbor:"dmv" json:"dmv"`
}

// Device reads /oic/d.
func (c *Conn) Device(ctx context.Context) (DeviceInfo, error) {
	var d DeviceInfo
	r, err := c.Get(ctx, ocf.HrefDevice)
	if err != nil {
		return d, err
	}
	if err := decodeLoose(r.Body, &d); err != nil {
		return d, fmt.Errorf("%s/oic/d: %w", c.endpoint, err)
	}
	return d, nil
}

// Status is the software update resource as a client sees it.
type Status struct {
	NV         string        `cbor:"nv" json:"nv"`
	PURL       string        `cbor:"purl" json:"purl"`
	Action     string        `cbor:"swupdateaction" json:"swupdateaction"`
	State      string        `cbor:"swupdatestate" json:"swupdatestate"`
	Result     int           `cbor:"swupdateresult" json:"swupdateresult"`
	LastUpdate string        `cbor:"lastupdate" json:"lastupdate"`
	Signed     string        `cbor:"signed" json:"signed"`
	UpdateTime string        `cbor:"updatetime" json:"updatetime"`
	Progress   *swu.Progress `cbor:"x.org.ocfupdate.progress" json:"progress,omitempty"`
	Detail     string        `cbor:"x.org.ocfupdate.detail" json:"detail"`
}

// DecodeStatus decodes a representation of the software update resource.
func DecodeStatus(body []byte) (Status, error) {
	var s Status
	err := decodeLoose(body, &s)
	return s, err
}

// Status reads the software update resource at href.
func (c *Conn) Status(ctx context.Context, href string) (Status, error) {
	r, err := c.Get(ctx, href)
	if err != nil {
		return Status{}, err
	}
	s, err := DecodeStatus(r.Body)
	if err != nil {
		return s, fmt.Errorf("%s%s: %w", c.endpoint, href, err)
	}
	return s, nil
}

// Update is an UPDATE of the software update resource; empty fields are
// not sent.
type Update struct {
	PURL   *string    // purl
	Action string     // swupdateaction
	At     *time.Time // updatetime; nil with an Action means "now"
	Cancel bool       // updatetime "none"
}

// Body returns the CBOR map the update sends.
func (u Update) Body() map[string]any {
	m := map[string]any{}
	if u.PURL != nil {
		m[swu.PropPURL] = *u.PURL
	}
	if u.Action != "" {
		m[swu.PropAction] = u.Action
		if u.At == nil && !u.Cancel && u.Action != string(swu.ActionIdle) {
			m[swu.PropUpdateTime] = swu.UpdateTimeNow
		}
	}
	if u.At != nil {
		m[swu.PropUpdateTime] = u.At.UTC().Format(time.RFC3339)
	}
	if u.Cancel {
		m[swu.PropUpdateTime] = swu.UpdateTimeNone
	}
	return m
}

// Update sends u to the software update resource at href and returns the
// representation the device answered with.
func (c *Conn) Update(ctx context.Context, href string, u Update) (Status, error) {
	r, err := c.Post(ctx, href, u.Body())
	if err != nil {
		return Status{}, err
	}
	return DecodeStatus(r.Body)
}
