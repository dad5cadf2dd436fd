package ohttp

import (
	"encoding/json"
	"net/http"

	"github.com/odohd/odoh/internal/mediatype"
)

// Media types (RFC 9458 §9), the well-known gateway path (RFC 9540 §5) and
// the problem type of an unusable key configuration (RFC 9458 §5.3).
const (
	KeysContentType     = "application/ohttp-keys"
	RequestContentType  = "message/ohttp-req"
	ResponseContentType = "message/ohttp-res"

	// WellKnownGatewayPath is the Oblivious Gateway Resource on the host
	// of its target: POST takes Encapsulated Requests, GET with "Accept:
	// application/ohttp-keys" returns the key configurations (RFC 9540
	// §5, §6).
	WellKnownGatewayPath = "/.well-known/ohttp-gateway"

	// ProblemContentType is the media type of problem details (RFC 9457).
	ProblemContentType = "application/problem+json"
	// KeyProblemType names a request encapsulated to an outdated or
	// unknown key configuration (RFC 9458 §5.3, §9.5).
	KeyProblemType = "https://iana.org/assignments/http-problem-types#ohttp-key"
)

// keyProblem is the problem details body of RFC 9458 Figure 7.
const keyProblem = `{"type":"` + KeyProblemType + `","title":"key identifier unknown"}`

// KeyProblem returns the body a gateway sends, with status 400 and
// [ProblemContentType], for an [odoh.ErrKeyMismatch] (RFC 9458 §5.3): it is
// the same for every request, so it says nothing about any.
func KeyProblem() []byte { return []byte(keyProblem) }

// IsKeyProblem reports whether a response the gateway did not encapsulate
// is its ohttp-key problem (RFC 9458 §5.3): status 400, one Content-Type
// naming ProblemContentType, and a problem details object (RFC 9457)
// whose type is KeyProblemType. A relay drops its copy of the gateway's
// keys on it, a client fetches them again.
func IsKeyProblem(status int, contentType []string, body []byte) bool {
	if status != http.StatusBadRequest || !mediatype.Single(contentType, ProblemContentType) {
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(body, &p) == nil && p.Type == KeyProblemType
}

// MaxDNSMessageSize bounds an Encapsulated Request or Response that
// carries one DNS message (at most 65535 bytes, RFC 1035 §4.2.2) in Binary
// HTTP: room for the message, its request or response head, padding to a
// 468-byte block (RFC 8467) and the encapsulation (at most 72 bytes). The
// gateway, the relay and the client of DNS over Oblivious HTTP all bound
// bodies with it.
const MaxDNSMessageSize = 65535 + 4096
