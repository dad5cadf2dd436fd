package ohttp

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

// Roles check these media types with odoh.HasContentType, the module's one
// Content-Type rule.

// KeyProblem returns the body a gateway sends, with status 400 and
// [ProblemContentType], for an [ErrKeyMismatch] (RFC 9458 §5.3): it is
// the same for every request, so it says nothing about any.
func KeyProblem() []byte { return []byte(keyProblem) }

// MaxDNSMessageSize bounds an Encapsulated Request or Response that
// carries one DNS message (at most 65535 bytes, RFC 1035 §4.2.2) in Binary
// HTTP: room for the message, its request or response head, padding to a
// 468-byte block (RFC 8467) and the encapsulation (at most 72 bytes). The
// gateway, the relay and the client of DNS over Oblivious HTTP all bound
// bodies with it.
const MaxDNSMessageSize = 65535 + 4096
