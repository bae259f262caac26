package ocf

import (
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
)

// The OCF version options have odd numbers, so CoAP calls them critical. An
// option go-coap does not know is answered 4.02 Bad Option before any handler
// runs; registering them makes go-coap parse them as the uint options they
// are. Registration happens at package init, before any goroutine can read
// the map.
func init() {
	for _, id := range []message.OptionID{OptionAcceptVersion, OptionContentVersion} {
		if _, ok := message.CoapOptionDefs[id]; !ok {
			message.CoapOptionDefs[id] = message.OptionDef{ValueFormat: message.ValueUint, MinLen: 0, MaxLen: 2}
		}
	}
}

// wireFormat is how a reply's payload is labelled.
type wireFormat struct {
	contentFormat message.MediaType
	version       bool // send OCF-Content-Format-Version (2053) = 2048
}

// negotiate works out the reply format of a request, and checks the request's
// own content format and Accept option.
//
// A request that speaks OCF (content format 10000, or either version option)
// gets 10000 with option 2053. A plain CoAP request gets 60 and no option
// 2053: libcoap's coap-client rejects a response carrying that option, which
// it did not ask for. An explicit Accept of 60 or 10000 wins.
//
// A body with a missing or foreign content format is 4.15; an Accept of
// anything else is 4.06. The returned format is valid even with an error, so
// the error's Diagnostic can be encoded.
func negotiate(r *pool.Message, hasBody bool) (wireFormat, codes.Code, string) {
	reqCF, cfErr := r.ContentFormat()
	hasCF := cfErr == nil
	speaksOCF := r.HasOption(OptionAcceptVersion) || r.HasOption(OptionContentVersion) ||
		(hasCF && reqCF == ContentFormatOCFCBOR)

	f := wireFormat{contentFormat: ContentFormatCBOR}
	if speaksOCF {
		f = wireFormat{contentFormat: ContentFormatOCFCBOR, version: true}
	}

	if hasBody {
		switch {
		case !hasCF:
			return f, codes.UnsupportedMediaType, "request body without a content format; use 10000 or 60"
		case reqCF != ContentFormatCBOR && reqCF != ContentFormatOCFCBOR:
			return f, codes.UnsupportedMediaType, "unsupported content format " + reqCF.String() + "; use 10000 or 60"
		}
	}

	if r.HasOption(message.Accept) {
		accept, err := r.Accept()
		switch {
		case err != nil:
			return f, codes.BadOption, "malformed Accept option"
		case accept == ContentFormatCBOR:
			f = wireFormat{contentFormat: ContentFormatCBOR}
		case accept == ContentFormatOCFCBOR:
			f = wireFormat{contentFormat: ContentFormatOCFCBOR, version: speaksOCF}
		default:
			return f, codes.NotAcceptable, "cannot answer in " + accept.String() + "; accept 10000 or 60"
		}
	}
	return f, 0, ""
}

// label sets the content format options for a payload in format f.
func (f wireFormat) label(msg *pool.Message) {
	msg.SetContentFormat(f.contentFormat)
	if f.version {
		msg.SetOptionUint32(OptionContentVersion, Version100)
	}
}
