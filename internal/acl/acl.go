package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

// Permission is OCF's CRUDN bitmask.
type Permission uint8

// The CRUDN bits.
const (
	Create   Permission = 1
	Retrieve Permission = 2
	Update   Permission = 4
	Delete   Permission = 8
	Notify   Permission = 16
	Full     Permission = Create | Retrieve | Update | Delete | Notify
)

// The connection types of a subject.
const (
	AnonClear = "anon-clear" // every peer
	AuthCrypt = "auth-crypt" // every peer authenticated over CoAPs
)

// Subject is who an entry is about; exactly one field is set.
type Subject struct {
	UUID     string `json:"uuid,omitempty"`
	CN       string `json:"cn,omitempty"`
	PSK      string `json:"psk,omitempty"`
	ConnType string `json:"conntype,omitempty"`
}

// Entry is one access control entry.
type Entry struct {
	Subject    Subject    `json:"subject"`
	Resources  []string   `json:"resources"`
	Permission Permission `json:"permission"`
}

// CoreResources are the hrefs anybody may retrieve: discovery and device
// information.
var CoreResources = []string{ocf.HrefRes, ocf.HrefDevice, ocf.HrefPlatform}

// DiscoveryEntry is in every List: anon-clear may retrieve the core
// resources.
var DiscoveryEntry = Entry{Subject: Subject{ConnType: AnonClear}, Resources: CoreResources, Permission: Retrieve}

// List is an access control list; it implements ocf.Authorizer. It does
// not change after New, so it is safe for concurrent use.
type List struct {
	entries []Entry
}

var _ ocf.Authorizer = (*List)(nil)

// maxEntries and maxResources bound what a file can make the device check
// on every request.
const (
	maxEntries   = 256
	maxResources = 64
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// New validates entries and returns a List of DiscoveryEntry followed by
// them.
func New(entries []Entry) (*List, error) {
	if len(entries) > maxEntries {
		return nil, fmt.Errorf("acl: %d entries, at most %d", len(entries), maxEntries)
	}
	var errs []error
	for i, e := range entries {
		if err := e.validate(); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	l := &List{entries: make([]Entry, 0, len(entries)+1)}
	l.entries = append(l.entries, DiscoveryEntry)
	for _, e := range entries {
		e.Resources = append([]string(nil), e.Resources...)
		l.entries = append(l.entries, e)
	}
	return l, nil
}

// Load reads an ACL file (a JSON list of entries). The file decides who
// may update the device: it must not be writable by group or others.
func Load(path string) (*List, error) {
	b, err := creds.ReadProtected(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	l, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Parse decodes a JSON list of entries; unknown fields are errors, since a
// misspelt subject would otherwise match nobody, or everybody.
func Parse(b []byte) (*List, error) {
	var entries []Entry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("acl: invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("acl: invalid JSON: data after the list")
	}
	return New(entries)
}

// Default is the List of a device without an ACL file: discovery for
// everybody, Retrieve on every resource for any authenticated peer, and
// every permission for the PSK identities the device was provisioned with.
func Default(pskIdentities []string) (*List, error) {
	entries := []Entry{{Subject: Subject{ConnType: AuthCrypt}, Resources: []string{"*"}, Permission: Retrieve}}
	for _, id := range pskIdentities {
		entries = append(entries, Entry{Subject: Subject{PSK: id}, Resources: []string{"*"}, Permission: Full})
	}
	l, err := New(entries)
	if err != nil {
		return nil, fmt.Errorf("default acl: %w", err)
	}
	return l, nil
}

// Open grants every peer every permission on every resource. It is for
// development only: anybody on the network can then change the device.
func Open() *List {
	l, _ := New([]Entry{{Subject: Subject{ConnType: AnonClear}, Resources: []string{"*"}, Permission: Full}})
	return l
}

// Entries returns a copy of the entries, DiscoveryEntry first.
func (l *List) Entries() []Entry {
	out := make([]Entry, len(l.entries))
	for i, e := range l.entries {
		e.Resources = append([]string(nil), e.Resources...)
		out[i] = e
	}
	return out
}

func (e Entry) validate() error {
	var errs []error
	if err := e.Subject.validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case len(e.Resources) == 0:
		errs = append(errs, errors.New("no resources"))
	case len(e.Resources) > maxResources:
		errs = append(errs, fmt.Errorf("%d resources, at most %d", len(e.Resources), maxResources))
	}
	for _, r := range e.Resources {
		if r != "*" && !strings.HasPrefix(r, "/") {
			errs = append(errs, fmt.Errorf("resource %q: want an href, \"*\" or a prefix ending in /*", r))
		}
	}
	if e.Permission == 0 || e.Permission > Full {
		errs = append(errs, fmt.Errorf("permission %d: want a CRUDN bitmask, 1 to %d", e.Permission, Full))
	}
	return errors.Join(errs...)
}

func (s Subject) validate() error {
	n := 0
	for _, v := range []string{s.UUID, s.CN, s.PSK, s.ConnType} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("subject must name exactly one of uuid, cn, psk, conntype")
	case s.ConnType != "" && s.ConnType != AnonClear && s.ConnType != AuthCrypt:
		return fmt.Errorf("conntype %q: want %s or %s", s.ConnType, AnonClear, AuthCrypt)
	case s.UUID != "" && !uuidRe.MatchString(s.UUID):
		return fmt.Errorf("uuid %q is not a UUID", s.UUID)
	}
	return nil
}

// String names the subject as in the file, for logs.
func (s Subject) String() string {
	switch {
	case s.ConnType != "":
		return "conntype:" + s.ConnType
	case s.PSK != "":
		return "psk:" + s.PSK
	case s.CN != "":
		return "cn:" + s.CN
	default:
		return "uuid:" + s.UUID
	}
}

// matches reports whether the subject covers peer.
func (s Subject) matches(p ocf.Peer) bool {
	authed := p.Secure && p.Auth != ""
	switch {
	case s.ConnType == AnonClear:
		return true
	case s.ConnType == AuthCrypt:
		return authed
	case s.PSK != "":
		return authed && p.Auth == ocf.AuthPSK && p.Identity == s.PSK
	case s.CN != "":
		return authed && p.Auth == ocf.AuthCert && p.Identity == s.CN
	case s.UUID != "":
		if !authed {
			return false
		}
		id, prefixed := strings.CutPrefix(p.Identity, "uuid:")
		if p.Auth == ocf.AuthCert && !prefixed {
			return false // a certificate names a UUID only as CN "uuid:<uuid>"
		}
		return strings.EqualFold(id, s.UUID)
	}
	return false
}

// covers reports whether the entry's resources include href.
func (e Entry) covers(href string) bool {
	for _, r := range e.Resources {
		switch {
		case r == "*" || r == href:
			return true
		case strings.HasSuffix(r, "/*") && strings.HasPrefix(href, strings.TrimSuffix(r, "*")):
			return true
		}
	}
	return false
}

// Permissions returns what peer may do on href: the union of the
// permissions of the matching entries.
func (l *List) Permissions(peer ocf.Peer, href string) Permission {
	var p Permission
	for _, e := range l.entries {
		if e.Subject.matches(peer) && e.covers(href) {
			p |= e.Permission
		}
	}
	return p
}

// Required is the permission a request needs: GET (and an Observe
// registration, which is a GET) Retrieve, POST Update, PUT Create, DELETE
// Delete. Any other method needs a bit no entry has.
func Required(method codes.Code) Permission {
	switch method {
	case codes.GET:
		return Retrieve
	case codes.POST:
		return Update
	case codes.PUT:
		return Create
	case codes.DELETE:
		return Delete
	}
	return Full + 1
}

// Authorize implements ocf.Authorizer: codes.Empty to allow, 4.01 for an
// unauthenticated peer that lacks the permission, 4.03 for an
// authenticated one.
func (l *List) Authorize(peer ocf.Peer, href string, method codes.Code, _ bool) codes.Code {
	need := Required(method)
	if l.Permissions(peer, href)&need == need {
		return codes.Empty
	}
	if !peer.Secure || peer.Auth == "" {
		return codes.Unauthorized
	}
	return codes.Forbidden
}
