package fetch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/ocfupdate/ocfupdate/internal/step"
	"github.com/ocfupdate/ocfupdate/internal/swu"
)

// ResultForHTTPStatus maps an HTTP status from the package source to a
// swupdateresult: 2xx is success, 400–599 is the status itself, anything
// else (1xx, 3xx, nonsense) is a response a download cannot use (7).
func ResultForHTTPStatus(code int) swu.Result {
	switch {
	case code >= 200 && code <= 299:
		return swu.ResultSuccess
	case code >= 400 && code <= 599:
		return swu.Result(code)
	default:
		return swu.ResultUnsupportedProt
	}
}

// ResultForCoAPCode maps a CoAP response code to a swupdateresult: class 2
// is success, classes 4 and 5 are class*100+detail (4.04 → 404, 5.03 →
// 503), anything else (requests, empty, signaling) is a response a download
// cannot use (7).
func ResultForCoAPCode(c codes.Code) swu.Result {
	class, detail := int(c)>>5, int(c)&0x1f
	switch class {
	case 2:
		return swu.ResultSuccess
	case 4, 5:
		return swu.Result(class*100 + detail)
	default:
		return swu.ResultUnsupportedProt
	}
}

// coapCodeString renders c as "4.04" for details.
func coapCodeString(c codes.Code) string {
	return fmt.Sprintf("%d.%02d", int(c)>>5, int(c)&0x1f)
}

// isStatusResult reports whether r carries an HTTP status or CoAP code.
func isStatusResult(r swu.Result) bool { return r >= 400 && r <= 599 }

// retryable reports whether a failed attempt may succeed when repeated:
// lost connections and server-side (5xx) errors, never client errors or
// validation failures.
func retryable(e *step.Error) bool {
	return e.Result == swu.ResultConnectionLost || (e.Result >= 500 && e.Result <= 599)
}

// failure builds the *step.Error every exported function returns.
func failure(r swu.Result, detail string, err error) *step.Error {
	return &step.Error{Result: r, Detail: detail, Err: err}
}

// Sentinel causes wrapped in *step.Error.Err, for errors.Is in tests and
// callers that want more than the result code.
var (
	// ErrTooLong: the source sent or announced more bytes than allowed.
	ErrTooLong = errors.New("more data than the metadata allows")
	// ErrLengthMismatch: the source's length differs from the metadata.
	ErrLengthMismatch = errors.New("length differs from the metadata")
	// ErrHashMismatch: the downloaded bytes do not have the expected hash.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrStalled: the server sent nothing for Config.Timeout.
	ErrStalled = errors.New("server stalled")
	// ErrNoCredentials: a coaps URL without Config.DialCoAPS.
	ErrNoCredentials = errors.New("no DTLS dial function configured")
)

// statusFailure maps an HTTP error status.
func statusFailure(code int, u string) *step.Error {
	r := ResultForHTTPStatus(code)
	text := http.StatusText(code)
	if text == "" {
		text = "an unknown status"
	}
	if !isStatusResult(r) {
		return failure(r, fmt.Sprintf("The package server answered HTTP %d (%s), which a download cannot use", code, text),
			fmt.Errorf("GET %s: status %d", u, code))
	}
	return failure(r, fmt.Sprintf("The package server answered HTTP %d %s", code, text),
		fmt.Errorf("GET %s: status %d", u, code))
}

// coapStatusFailure maps a CoAP error code.
func coapStatusFailure(c codes.Code, u string) *step.Error {
	r := ResultForCoAPCode(c)
	if !isStatusResult(r) {
		return failure(r, fmt.Sprintf("The package server answered CoAP %s, which a download cannot use", coapCodeString(c)),
			fmt.Errorf("GET %s: code %v", u, c))
	}
	return failure(r, fmt.Sprintf("The package server answered CoAP %s %v", coapCodeString(c), c),
		fmt.Errorf("GET %s: code %v", u, c))
}

// networkFailure classifies an error from dialling or reading: a TLS
// verification failure is result 5 (not retried), a peer that does not
// speak TLS is 7, anything else is a lost connection (4, retried).
func networkFailure(err error, host string) *step.Error {
	var se *step.Error
	if errors.As(err, &se) { // from CheckRedirect
		return se
	}
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalidErr):
		return failure(swu.ResultValidation, fmt.Sprintf("The certificate of package server %s is not trusted", host), err)
	case errors.As(err, &recordErr), errors.Is(err, http.ErrSchemeMismatch):
		return failure(swu.ResultUnsupportedProt, fmt.Sprintf("Package server %s does not speak TLS", host), err)
	}
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
	)
	switch {
	case errors.As(err, &dnsErr):
		return failure(swu.ResultConnectionLost, fmt.Sprintf("Could not resolve package server %s", host), err)
	case errors.As(err, &opErr) && opErr.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		return failure(swu.ResultConnectionLost, fmt.Sprintf("Could not connect to package server %s", host), err)
	case errors.Is(err, ErrStalled):
		return failure(swu.ResultConnectionLost, fmt.Sprintf("Package server %s stopped answering", host), err)
	}
	return failure(swu.ResultConnectionLost, fmt.Sprintf("Lost the connection to package server %s", host), err)
}

// diskFailure maps a local write or sync error: a full disk or quota is
// result 3, anything else is a failed update step (8).
func diskFailure(err error, path string) *step.Error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return failure(swu.ResultNoFlash, "Not enough free storage for the package", err)
	}
	return failure(swu.ResultUpdateFailed, fmt.Sprintf("Could not write the package to %s", path), err)
}
