package acl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/creds"
	"github.com/ocfupdate/ocfupdate/internal/ocf"
)

const testUUID = "8f0c3a52-8d7e-4bb1-9d1a-0c3f1e2d4b5a"

// Peers of every kind.
var (
	anon      = ocf.Peer{Addr: "192.0.2.1:5683"}
	pskOp     = ocf.Peer{Addr: "192.0.2.2:40000", Secure: true, Auth: ocf.AuthPSK, Identity: "operator"}
	pskOther  = ocf.Peer{Addr: "192.0.2.3:40000", Secure: true, Auth: ocf.AuthPSK, Identity: "guest"}
	certOp    = ocf.Peer{Addr: "192.0.2.4:40000", Secure: true, Auth: ocf.AuthCert, Identity: "operator"}
	certUUID  = ocf.Peer{Addr: "192.0.2.5:40000", Secure: true, Auth: ocf.AuthCert, Identity: "uuid:" + strings.ToUpper(testUUID)}
	pskUUID   = ocf.Peer{Addr: "192.0.2.6:40000", Secure: true, Auth: ocf.AuthPSK, Identity: testUUID}
	certPlain = ocf.Peer{Addr: "192.0.2.7:40000", Secure: true, Auth: ocf.AuthCert, Identity: testUUID} // no "uuid:" prefix
	// A plain CoAP peer claiming an identity is still anonymous.
	forged = ocf.Peer{Addr: "192.0.2.8:5683", Auth: ocf.AuthPSK, Identity: "operator"}
)

var methods = []struct {
	method codes.Code
	bit    Permission
}{
	{codes.PUT, Create},
	{codes.GET, Retrieve},
	{codes.POST, Update},
	{codes.DELETE, Delete},
}

// TestSubjects: every subject kind against every kind of peer.
func TestSubjects(t *testing.T) {
	peers := map[string]ocf.Peer{"anon": anon, "pskOp": pskOp, "pskOther": pskOther, "certOp": certOp,
		"certUUID": certUUID, "pskUUID": pskUUID, "certPlain": certPlain, "forged": forged}
	for _, tt := range []struct {
		subject Subject
		match   []string
	}{
		{Subject{ConnType: AnonClear}, []string{"anon", "pskOp", "pskOther", "certOp", "certUUID", "pskUUID", "certPlain", "forged"}},
		{Subject{ConnType: AuthCrypt}, []string{"pskOp", "pskOther", "certOp", "certUUID", "pskUUID", "certPlain"}},
		{Subject{PSK: "operator"}, []string{"pskOp"}},
		{Subject{CN: "operator"}, []string{"certOp"}},
		{Subject{UUID: testUUID}, []string{"certUUID", "pskUUID"}},
	} {
		t.Run(tt.subject.String(), func(t *testing.T) {
			for name, p := range peers {
				want := false
				for _, m := range tt.match {
					want = want || m == name
				}
				if got := tt.subject.matches(p); got != want {
					t.Errorf("%s: matches %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestResources: exact hrefs, "*" and "/prefix/*".
func TestResources(t *testing.T) {
	for _, tt := range []struct {
		resources []string
		href      string
		want      bool
	}{
		{[]string{"/oc/swu"}, "/oc/swu", true},
		{[]string{"/oc/swu"}, "/oc/swu2", false},
		{[]string{"/oc/swu"}, "/oic/d", false},
		{[]string{"*"}, "/anything/at/all", true},
		{[]string{"/oic/*"}, "/oic/sec/pstat", true},
		{[]string{"/oic/*"}, "/oic", false},
		{[]string{"/oic/*"}, "/oc/swu", false},
		{[]string{"/oic/d", "/oc/swu"}, "/oc/swu", true},
	} {
		e := Entry{Subject: Subject{ConnType: AnonClear}, Resources: tt.resources, Permission: Retrieve}
		if got := e.covers(tt.href); got != tt.want {
			t.Errorf("%v covers %s: %v, want %v", tt.resources, tt.href, got, tt.want)
		}
	}
}

// TestPermissionBits: each CRUDN bit allows its method and nothing else;
// a denial is 4.01 for an anonymous peer and 4.03 for an authenticated one.
func TestPermissionBits(t *testing.T) {
	for _, grant := range []Permission{Create, Retrieve, Update, Delete, Notify, Full} {
		l, err := New([]Entry{
			{Subject: Subject{PSK: "operator"}, Resources: []string{"/oc/swu"}, Permission: grant},
			{Subject: Subject{ConnType: AnonClear}, Resources: []string{"/open"}, Permission: grant},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range methods {
			for _, observe := range []bool{false, true} {
				if observe && m.method != codes.GET {
					continue
				}
				allowed := grant&m.bit != 0
				want := codes.Forbidden
				if allowed {
					want = codes.Empty
				}
				if got := l.Authorize(pskOp, "/oc/swu", m.method, observe); got != want {
					t.Errorf("grant %d, %v observe=%v: %v, want %v", grant, m.method, observe, got, want)
				}
				// Another resource: nothing.
				if got := l.Authorize(pskOp, "/oic/sec/pstat", m.method, observe); got != codes.Forbidden {
					t.Errorf("grant %d on /oc/swu, %v on pstat: %v", grant, m.method, got)
				}
				// The same grant to anon-clear elsewhere: 4.01 when denied.
				want = codes.Unauthorized
				if allowed {
					want = codes.Empty
				}
				if got := l.Authorize(anon, "/open", m.method, observe); got != want {
					t.Errorf("anon, grant %d, %v: %v, want %v", grant, m.method, got, want)
				}
			}
		}
		if got := l.Authorize(pskOp, "/oc/swu", codes.Code(5) /* PATCH */, false); got != codes.Forbidden {
			t.Errorf("PATCH allowed with grant %d", grant)
		}
	}
}

// TestUnion: permissions of several matching entries add up.
func TestUnion(t *testing.T) {
	l, err := New([]Entry{
		{Subject: Subject{ConnType: AuthCrypt}, Resources: []string{"*"}, Permission: Retrieve},
		{Subject: Subject{PSK: "operator"}, Resources: []string{"/oc/swu"}, Permission: Update},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Permissions(pskOp, "/oc/swu"); got != Retrieve|Update {
		t.Fatalf("permissions %d, want R|U", got)
	}
	if got := l.Permissions(pskOther, "/oc/swu"); got != Retrieve {
		t.Fatalf("another identity: %d, want R", got)
	}
}

// TestDefaults: discovery is open, the update resource is not; the
// provisioned PSK identities may do everything, certificates and other
// peers may read; Open opens everything.
func TestDefaults(t *testing.T) {
	def := mustDefault(t, []string{"operator"})
	for _, tt := range []struct {
		list   *List
		peer   ocf.Peer
		href   string
		method codes.Code
		want   codes.Code
	}{
		{def, anon, ocf.HrefRes, codes.GET, codes.Empty},
		{def, anon, ocf.HrefDevice, codes.GET, codes.Empty},
		{def, anon, ocf.HrefPlatform, codes.GET, codes.Empty},
		{def, anon, "/oc/swu", codes.GET, codes.Unauthorized},
		{def, anon, "/oc/swu", codes.POST, codes.Unauthorized},
		{def, anon, "/oic/sec/pstat", codes.GET, codes.Unauthorized},
		{def, forged, "/oc/swu", codes.POST, codes.Unauthorized},
		{def, anon, ocf.HrefDevice, codes.POST, codes.Unauthorized},
		{def, pskOp, "/oc/swu", codes.POST, codes.Empty},
		{def, pskOp, "/oic/sec/pstat", codes.POST, codes.Empty},
		{def, pskOther, "/oc/swu", codes.GET, codes.Empty},
		{def, pskOther, "/oc/swu", codes.POST, codes.Forbidden},
		{def, certOp, "/oc/swu", codes.GET, codes.Empty},
		{def, certOp, "/oc/swu", codes.POST, codes.Forbidden},
		{mustDefault(t, nil), pskOp, "/oc/swu", codes.POST, codes.Forbidden},
		{Open(), anon, "/oc/swu", codes.POST, codes.Empty},
		{Open(), anon, "/oic/sec/pstat", codes.DELETE, codes.Empty},
	} {
		if got := tt.list.Authorize(tt.peer, tt.href, tt.method, false); got != tt.want {
			t.Errorf("%+v %v %s: %v, want %v", tt.peer, tt.method, tt.href, got, tt.want)
		}
	}
	many := make([]string, maxEntries+1)
	for i := range many {
		many[i] = fmt.Sprintf("op-%d", i)
	}
	if _, err := Default(many); err == nil {
		t.Error("a default list beyond the entry bound was built")
	}
	if e := def.Entries()[0]; e.Subject.ConnType != AnonClear || e.Permission != Retrieve {
		t.Fatalf("first entry %+v, want the discovery entry", e)
	}
}

func mustDefault(t *testing.T, ids []string) *List {
	t.Helper()
	l, err := Default(ids)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestObserveNeedsRetrieve: an Observe registration is a GET: Notify alone
// does not allow it, Retrieve does.
func TestObserveNeedsRetrieve(t *testing.T) {
	l, err := New([]Entry{
		{Subject: Subject{PSK: "notify-only"}, Resources: []string{"*"}, Permission: Notify},
		{Subject: Subject{PSK: "operator"}, Resources: []string{"*"}, Permission: Retrieve},
	})
	if err != nil {
		t.Fatal(err)
	}
	notifyOnly := pskOp
	notifyOnly.Identity = "notify-only"
	if got := l.Authorize(notifyOnly, "/oc/swu", codes.GET, true); got != codes.Forbidden {
		t.Fatalf("registration with N only: %v", got)
	}
	if got := l.Authorize(pskOp, "/oc/swu", codes.GET, true); got != codes.Empty {
		t.Fatalf("registration with R: %v", got)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, json, err string
	}{
		{"valid", `[{"subject": {"psk": "operator"}, "resources": ["/oc/swu", "*"], "permission": 31},
			{"subject": {"uuid": "` + testUUID + `"}, "resources": ["/oic/*"], "permission": 2},
			{"subject": {"cn": "monitor"}, "resources": ["/oc/swu"], "permission": 18},
			{"subject": {"conntype": "auth-crypt"}, "resources": ["*"], "permission": 2}]`, ""},
		{"empty list", `[]`, ""},
		{"not a list", `{"subject": {}}`, "invalid JSON"},
		{"unknown field", `[{"subject": {"psk": "x"}, "resource": ["*"], "permission": 2}]`, "unknown field"},
		{"misspelt subject", `[{"subject": {"identity": "x"}, "resources": ["*"], "permission": 2}]`, "unknown field"},
		{"two subjects", `[{"subject": {"psk": "x", "cn": "y"}, "resources": ["*"], "permission": 2}]`, "exactly one"},
		{"no subject", `[{"subject": {}, "resources": ["*"], "permission": 2}]`, "exactly one"},
		{"bad conntype", `[{"subject": {"conntype": "anon-crypt"}, "resources": ["*"], "permission": 2}]`, "conntype"},
		{"bad uuid", `[{"subject": {"uuid": "not-a-uuid"}, "resources": ["*"], "permission": 2}]`, "not a UUID"},
		{"no resources", `[{"subject": {"psk": "x"}, "resources": [], "permission": 2}]`, "no resources"},
		{"relative href", `[{"subject": {"psk": "x"}, "resources": ["oc/swu"], "permission": 2}]`, "want an href"},
		{"zero permission", `[{"subject": {"psk": "x"}, "resources": ["*"], "permission": 0}]`, "permission 0"},
		{"permission too big", `[{"subject": {"psk": "x"}, "resources": ["*"], "permission": 32}]`, "permission 32"},
		{"trailing data", `[] []`, "after the list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}

// TestLoad: a file other users could write is refused; a good one loads.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(`[{"subject": {"psk": "operator"}, "resources": ["*"], "permission": 31}]`), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	l, err := Load(write("ok.json", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Authorize(pskOp, "/oc/swu", codes.POST, false); got != codes.Empty {
		t.Fatalf("loaded list denies the operator: %v", got)
	}
	if got := l.Authorize(anon, ocf.HrefRes, codes.GET, false); got != codes.Empty {
		t.Fatalf("a loaded list lacks the discovery entry: %v", got)
	}
	for _, mode := range []os.FileMode{0o666, 0o664} {
		_, err := Load(write("writable.json", mode))
		if !errors.Is(err, creds.ErrInsecurePermissions) {
			t.Errorf("mode %04o: err %v, want ErrInsecurePermissions", mode, err)
		}
	}
}

// FuzzParse: no input makes Parse panic, and what it accepts validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[{"subject": {"psk": "operator"}, "resources": ["*"], "permission": 31}]`))
	f.Add([]byte(`[{"subject": {"uuid": "` + testUUID + `"}, "resources": ["/oic/*"], "permission": 2}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		for _, e := range l.Entries() {
			if err := e.validate(); err != nil {
				t.Fatalf("accepted an invalid entry %+v: %v", e, err)
			}
		}
	})
}
