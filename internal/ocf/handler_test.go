package ocf

import (
	"bytes"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// echo is a writable resource that answers POST with the decoded body.
func echoResource() *fakeResource {
	f := newFake("/echo")
	f.serve = func(req *Request) Response {
		switch req.Method {
		case codes.GET:
			return Response{Body: map[string]any{"if": req.Interface}}
		case codes.POST:
			m, err := DecodeMap(req.Body)
			if err != nil {
				return ErrorResponse(codes.BadRequest, "", err.Error())
			}
			return Response{Code: codes.Changed, Body: m}
		case codes.DELETE:
			return Response{Code: codes.InternalServerError} // no body: server adds a Diagnostic
		}
		return ErrorResponse(codes.MethodNotAllowed, "", "no")
	}
	return f
}

func TestRequestRules(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBodySize = 64
	cfg.Authorizer = AuthorizerFunc(func(_ Peer, href string, _ codes.Code, _ bool) codes.Code {
		if href == "/secret" {
			return codes.Unauthorized
		}
		return codes.Empty
	})
	_, addr := startServer(t, cfg, echoResource(), newFake("/secret"))
	cc := dial(t, addr, true)

	cbor := mustEncode(t, map[string]any{"purl": "https://x"})
	ocfVer := uintOpt(OptionAcceptVersion, Version100)
	ocfCF := uintOpt(OptionContentVersion, Version100)

	tests := []struct {
		name     string
		call     call
		wantCode codes.Code
		wantCF   message.MediaType // reply content format; 0 for no payload
		want2053 bool
		wantDiag string // Diagnostic.Property to expect, "-" for any error without property
	}{
		{"plain GET answers 60 without 2053", call{codes.GET, "/oic/d", -1, nil, nil}, codes.Content, ContentFormatCBOR, false, ""},
		{"GET with 2049 answers 10000 with 2053", call{codes.GET, "/oic/d", -1, nil, []message.Option{ocfVer}}, codes.Content, ContentFormatOCFCBOR, true, ""},
		{"GET with Accept 10000 only", call{codes.GET, "/oic/d", -1, nil, []message.Option{uintOpt(message.Accept, ContentFormatOCFCBOR)}}, codes.Content, ContentFormatOCFCBOR, false, ""},
		{"GET with 2049 and Accept 60", call{codes.GET, "/oic/d", -1, nil, []message.Option{ocfVer, uintOpt(message.Accept, ContentFormatCBOR)}}, codes.Content, ContentFormatCBOR, false, ""},
		{"POST 10000 mirrors 10000 and 2053", call{codes.POST, "/echo", ContentFormatOCFCBOR, cbor, []message.Option{ocfCF}}, codes.Changed, ContentFormatOCFCBOR, true, ""},
		{"POST 10000 without version options still gets 2053", call{codes.POST, "/echo", ContentFormatOCFCBOR, cbor, nil}, codes.Changed, ContentFormatOCFCBOR, true, ""},
		{"POST 60", call{codes.POST, "/echo", ContentFormatCBOR, cbor, nil}, codes.Changed, ContentFormatCBOR, false, ""},
		{"POST json is 4.15", call{codes.POST, "/echo", int(message.AppJSON), []byte(`{}`), nil}, codes.UnsupportedMediaType, ContentFormatCBOR, false, "-"},
		{"POST body without content format is 4.15", call{codes.POST, "/echo", -1, cbor, nil}, codes.UnsupportedMediaType, ContentFormatCBOR, false, "-"},
		{"4.15 to an OCF client is in 10000", call{codes.POST, "/echo", int(message.AppJSON), []byte(`{}`), []message.Option{ocfVer}}, codes.UnsupportedMediaType, ContentFormatOCFCBOR, true, "-"},
		{"oversized body is 4.13", call{codes.POST, "/echo", ContentFormatCBOR, mustEncode(t, map[string]string{"k": string(bytes.Repeat([]byte("a"), 80))}), nil}, codes.RequestEntityTooLarge, ContentFormatCBOR, false, "-"},
		{"Accept json is 4.06", call{codes.GET, "/oic/d", -1, nil, []message.Option{uintOpt(message.Accept, uint32(message.AppJSON))}}, codes.NotAcceptable, ContentFormatCBOR, false, "-"},
		{"foreign interface is 4.03", call{codes.GET, "/oic/d?if=oic.if.rw", -1, nil, nil}, codes.Forbidden, ContentFormatCBOR, false, "if"},
		{"two if= are 4.00", call{codes.GET, "/echo?if=oic.if.rw&if=oic.if.baseline", -1, nil, nil}, codes.BadRequest, ContentFormatCBOR, false, "if"},
		{"unknown href is 4.04", call{codes.GET, "/nope", -1, nil, nil}, codes.NotFound, ContentFormatCBOR, false, "-"},
		{"unknown href to an OCF client", call{codes.GET, "/nope", -1, nil, []message.Option{ocfVer}}, codes.NotFound, ContentFormatOCFCBOR, true, "-"},
		{"FETCH is 4.05", call{codes.FETCH, "/echo", -1, nil, nil}, codes.MethodNotAllowed, ContentFormatCBOR, false, "-"},
		{"POST to /oic/d is 4.05", call{codes.POST, "/oic/d", ContentFormatCBOR, cbor, nil}, codes.MethodNotAllowed, ContentFormatCBOR, false, "-"},
		{"Authorizer refusal", call{codes.GET, "/secret", -1, nil, nil}, codes.Unauthorized, ContentFormatCBOR, false, "-"},
		{"error without body gets a Diagnostic", call{codes.DELETE, "/echo", -1, nil, nil}, codes.InternalServerError, ContentFormatCBOR, false, "-"},
		{"Block1 without its first block is 4.08", call{codes.POST, "/echo", ContentFormatCBOR, cbor, []message.Option{uintOpt(message.Block1, 1<<4|6)}}, codes.RequestEntityIncomplete, ContentFormatCBOR, false, "-"},
		{"POST continuation without a kept response is 4.08", call{codes.POST, "/echo", -1, nil, []message.Option{uintOpt(message.Block2, 1<<4|6)}}, codes.RequestEntityIncomplete, ContentFormatCBOR, false, "-"},
		{"single final Block1 is a whole body", call{codes.POST, "/echo", ContentFormatCBOR, cbor, []message.Option{uintOpt(message.Block1, 6)}}, codes.Changed, ContentFormatCBOR, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, cc, tc.call)
			if resp.Code() != tc.wantCode {
				t.Fatalf("code = %v, want %v (payload %x)", resp.Code(), tc.wantCode, body(t, resp))
			}
			checkFormat(t, resp, tc.wantCF, tc.want2053)
			if tc.wantDiag != "" {
				d := diagnostic(t, resp)
				if d.Error == "" {
					t.Errorf("diagnostic without error text")
				}
				if tc.wantDiag != "-" && d.Property != tc.wantDiag {
					t.Errorf("diagnostic property = %q, want %q", d.Property, tc.wantDiag)
				}
			}
		})
	}
}

func checkFormat(t *testing.T, resp *pool.Message, wantCF message.MediaType, want2053 bool) {
	t.Helper()
	cf, err := resp.ContentFormat()
	switch {
	case wantCF == 0 && err == nil:
		t.Errorf("content format %v on a reply without payload", cf)
	case wantCF != 0 && err != nil:
		t.Errorf("no content format, want %v", wantCF)
	case wantCF != 0 && cf != wantCF:
		t.Errorf("content format = %v, want %v", cf, wantCF)
	}
	v, err := resp.GetOptionUint32(OptionContentVersion)
	has := err == nil
	if has != want2053 {
		t.Errorf("option 2053 present = %v, want %v", has, want2053)
	}
	if has && v != Version100 {
		t.Errorf("option 2053 = %d, want %d", v, Version100)
	}
}

// TestResourceSeesRequest checks what the Resource gets: interface default
// and override, query, body, peer.
func TestResourceSeesRequest(t *testing.T) {
	f := echoResource()
	_, addr := startServer(t, testConfig(t), f)
	cc := dial(t, addr, true)
	cbor := mustEncode(t, map[string]any{"a": uint64(1)})

	do(t, cc, call{codes.GET, "/echo", -1, nil, nil})
	do(t, cc, call{codes.GET, "/echo?if=oic.if.baseline&x=y", -1, nil, nil})
	resp := do(t, cc, call{codes.POST, "/echo", ContentFormatCBOR, cbor, nil})
	got, err := DecodeMap(body(t, resp))
	if err != nil || got["a"] != uint64(1) {
		t.Errorf("POST echo = %v, %v", got, err)
	}

	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("resource served %d requests, want 3", len(reqs))
	}
	if reqs[0].Interface != IfRW || reqs[1].Interface != IfBaseline {
		t.Errorf("interfaces = %q, %q", reqs[0].Interface, reqs[1].Interface)
	}
	if len(reqs[1].Query) != 2 || reqs[1].Query[1] != "x=y" {
		t.Errorf("query = %q", reqs[1].Query)
	}
	if reqs[2].Method != codes.POST || !bytes.Equal(reqs[2].Body, cbor) {
		t.Errorf("POST request = %v %x", reqs[2].Method, reqs[2].Body)
	}
	if reqs[0].Peer.Addr != cc.LocalAddr().String() || reqs[0].Peer.Secure || reqs[0].Multicast {
		t.Errorf("peer = %+v (client %v), multicast %v", reqs[0].Peer, cc.LocalAddr(), reqs[0].Multicast)
	}
}
