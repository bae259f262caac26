package swu

import (
	"strings"
	"testing"
)

func TestResolvePURL(t *testing.T) {
	const vendor = "https://vendor.example.com/repo"
	long := "https://example.com/" + strings.Repeat("p", 2*DefaultMaxPURLLength)
	cases := []struct {
		name          string
		purl, vendor  string
		allowInsecure bool
		wantURL       string // when wantResult is ResultIdle
		wantResult    Result
		wantDetail    []string // substrings of the detail when failing
	}{
		{name: "https", purl: "https://h.example/r", wantURL: "https://h.example/r"},
		{name: "coaps", purl: "coaps://h.example:5684/r", wantURL: "coaps://h.example:5684/r"},
		{name: "scheme case folded", purl: "HTTPS://h.example/r", wantURL: "https://h.example/r"},
		{name: "purl wins over vendor", purl: "https://h.example/r", vendor: vendor, wantURL: "https://h.example/r"},
		{name: "empty purl uses vendor", purl: "", vendor: vendor, wantURL: vendor},
		{name: "empty purl, no vendor", purl: "", wantResult: ResultInvalidURL, wantDetail: []string{"no purl and no built-in vendor URL"}},
		{name: "malformed purl", purl: "https://exa mple/", vendor: vendor, wantResult: ResultInvalidURL, wantDetail: []string{"purl", "whitespace"}},
		{name: "relative purl", purl: "/r", wantResult: ResultInvalidURL, wantDetail: []string{"purl", "absolute URL"}},
		{name: "malformed vendor URL", purl: "", vendor: "vendor.example.com", wantResult: ResultInvalidURL, wantDetail: []string{"built-in vendor URL", "absolute URL"}},
		{name: "long stored purl is not re-limited", purl: long, wantURL: long},
		{name: "ftp unsupported", purl: "ftp://x", wantResult: ResultUnsupportedProt, wantDetail: []string{`"ftp"`, "https, coaps"}},
		{name: "ftp unsupported even when insecure allowed", purl: "ftp://x", allowInsecure: true, wantResult: ResultUnsupportedProt, wantDetail: []string{`"ftp"`, "https, coaps, http, coap"}},
		{name: "http refused by default", purl: "http://h.example/r", wantResult: ResultUnsupportedProt, wantDetail: []string{`"http"`, "insecure sources are not allowed"}},
		{name: "coap refused by default", purl: "coap://h.example/r", wantResult: ResultUnsupportedProt, wantDetail: []string{`"coap"`, "insecure"}},
		{name: "http allowed when insecure allowed", purl: "http://127.0.0.1:8080/r", allowInsecure: true, wantURL: "http://127.0.0.1:8080/r"},
		{name: "coap allowed when insecure allowed", purl: "coap://[::1]/r", allowInsecure: true, wantURL: "coap://[::1]/r"},
		{name: "vendor with unsupported scheme", purl: "", vendor: "gopher://v.example/", wantResult: ResultUnsupportedProt, wantDetail: []string{"built-in vendor URL", `"gopher"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, res, detail := ResolvePURL(tc.purl, tc.vendor, tc.allowInsecure)
			if res != tc.wantResult {
				t.Fatalf("result = %d (%q), want %d", res, detail, tc.wantResult)
			}
			if tc.wantResult == ResultIdle {
				if u == nil || u.String() != tc.wantURL || detail != "" {
					t.Fatalf("got (%v, %q), want %s and no detail", u, detail, tc.wantURL)
				}
				return
			}
			if u != nil {
				t.Errorf("got URL %v with result %d, want nil", u, res)
			}
			for _, w := range tc.wantDetail {
				if !strings.Contains(detail, w) {
					t.Errorf("detail %q does not contain %q", detail, w)
				}
			}
		})
	}
}

// The supported list must not be shared: enabling insecure schemes in one
// call must not leak into the next.
func TestResolvePURLDoesNotMutateSchemes(t *testing.T) {
	ResolvePURL("http://h.example/", "", true)
	if _, res, _ := ResolvePURL("http://h.example/", "", false); res != ResultUnsupportedProt {
		t.Fatalf("http accepted without allowInsecure after an insecure call: result %d", res)
	}
}
