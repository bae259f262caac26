package fetch

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// Schemes a package URL may have.
const (
	SchemeHTTPS = "https"
	SchemeCoAPS = "coaps"
	SchemeHTTP  = "http" // only with AllowInsecure
	SchemeCoAP  = "coap" // only with AllowInsecure
)

// Default ports for the CoAP schemes (RFC 7252).
const (
	coapPort  = "5683"
	coapsPort = "5684"
)

// ParseURL parses and checks a package URL. It returns a *step.Error with
// result 6 for a malformed or not fully qualified URL and 7 for a scheme
// that is not supported (http and coap count as supported only when
// allowInsecure is set). The swu resource uses it to refuse a bad purl with
// 4.00 on UPDATE; Download and Get call it at run time.
func ParseURL(rawURL string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, failure(swu.ResultInvalidURL, "The package URL is malformed", err)
	}
	if u.Scheme == "" {
		return nil, failure(swu.ResultInvalidURL, "The package URL has no scheme", fmt.Errorf("parse %q: missing scheme", redact(u)))
	}
	if u.Opaque != "" {
		// "host:8080/x" parses as scheme "host": call it malformed, not unsupported.
		return nil, failure(swu.ResultInvalidURL, "The package URL is not of the form scheme://host/path",
			fmt.Errorf("parse %q: opaque URL", redact(u)))
	}
	switch u.Scheme { // url.Parse lower-cases the scheme
	case SchemeHTTPS, SchemeCoAPS:
	case SchemeHTTP, SchemeCoAP:
		if !allowInsecure {
			return nil, failure(swu.ResultUnsupportedProt,
				fmt.Sprintf("Insecure %s package URLs are not allowed on this device", u.Scheme),
				fmt.Errorf("parse %q: scheme %s needs AllowInsecure", redact(u), u.Scheme))
		}
	default:
		return nil, failure(swu.ResultUnsupportedProt,
			fmt.Sprintf("The package URL scheme %q is not supported", u.Scheme),
			fmt.Errorf("parse %q: unsupported scheme", redact(u)))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, failure(swu.ResultInvalidURL, "The package URL has no host",
			fmt.Errorf("parse %q: missing host", redact(u)))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, failure(swu.ResultInvalidURL, "The package URL has an invalid port",
				fmt.Errorf("parse %q: port %q", redact(u), p))
		}
	}
	if isCoAP(u) && (strings.Contains(u.EscapedPath(), "%2F") || strings.Contains(u.EscapedPath(), "%2f")) {
		// A CoAP Uri-Path segment cannot carry a '/' through go-coap.
		return nil, failure(swu.ResultInvalidURL, "The package URL has an escaped '/' in its path, which CoAP cannot carry",
			fmt.Errorf("parse %q: escaped slash", redact(u)))
	}
	return u, nil
}

func isCoAP(u *url.URL) bool { return u.Scheme == SchemeCoAP || u.Scheme == SchemeCoAPS }

// hostPort returns host:port with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case SchemeCoAPS:
			port = coapsPort
		case SchemeCoAP:
			port = coapPort
		case SchemeHTTP:
			port = "80"
		default:
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// redact renders u for logs and errors without a password.
func redact(u *url.URL) string { return u.Redacted() }
