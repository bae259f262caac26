package swu

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxPURLLength is the longest purl accepted, in bytes. The draft says
// 64, which does not fit real repository URLs; see the package doc.
const DefaultMaxPURLLength = 512

// Schemes a package source may use. The insecure ones are accepted only
// when the device is configured to allow them.
var (
	secureSchemes   = []string{"https", "coaps"}
	insecureSchemes = []string{"http", "coap"}
)

// checkPURL checks that s is a well-formed absolute URL of at most max
// bytes and returns it parsed, or a sentence saying what is wrong. It does
// not judge the scheme: that is a run-time question (result 7).
func checkPURL(s string, max int) (*url.URL, string) {
	if len(s) > max {
		return nil, fmt.Sprintf("is %d bytes long; at most %d are allowed", len(s), max)
	}
	// A purl is echoed to clients and logs, so it must be plain valid text.
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0 {
		return nil, "contains whitespace, control characters or invalid UTF-8"
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole input; the reason alone is enough.
		var reason error = err
		if ue, ok := err.(*url.Error); ok {
			reason = ue.Err
		}
		return nil, "is not a valid URL: " + reason.Error()
	}
	if u.Scheme == "" || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, "must be an absolute URL with a scheme and a host, such as https://updates.example.com/repo"
	}
	if u.User != nil {
		return nil, "must not carry user information: every client that may read the resource sees it"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, "has an invalid port " + quote(p)
		}
	}
	return u, ""
}

// ResolvePURL turns the purl property into the URL an action fetches from,
// at run time. "" means the built-in vendor URL. It returns the URL and
// ResultIdle, or nil, the swupdateresult to report (ResultInvalidURL for a
// missing or malformed URL, ResultUnsupportedProt for a scheme this device
// does not fetch from) and a sentence for x.org.ocfupdate.detail.
// http and coap are supported only when allowInsecure is set.
func ResolvePURL(purl, vendorURL string, allowInsecure bool) (*url.URL, Result, string) {
	what, s := "purl", purl
	if purl == "" {
		if vendorURL == "" {
			return nil, ResultInvalidURL, "no purl and no built-in vendor URL"
		}
		what, s = "the built-in vendor URL", vendorURL
	}
	// No length limit here: a stored purl passed ParseUpdate with whatever
	// limit the device was configured with, and the vendor URL comes from
	// configuration, not from a client. Both must still be well formed.
	u, bad := checkPURL(s, len(s))
	if bad != "" {
		return nil, ResultInvalidURL, what + " " + bad
	}
	supported := secureSchemes
	if allowInsecure {
		supported = append(append([]string(nil), secureSchemes...), insecureSchemes...)
	}
	if slices.Contains(supported, u.Scheme) { // url.Parse lowercases the scheme
		return u, ResultIdle, ""
	}
	msg := fmt.Sprintf("%s uses the unsupported protocol %s; supported: %s",
		what, quote(u.Scheme), strings.Join(supported, ", "))
	if !allowInsecure && slices.Contains(insecureSchemes, u.Scheme) {
		msg += " (insecure sources are not allowed on this device)"
	}
	return nil, ResultUnsupportedProt, msg
}
