package odoh

import "github.com/odohd/odoh/internal/mediatype"

// The HTTP paths and media types of ODoH. Clients, proxies and targets all
// use these; none keeps a copy.
const (
	// QueryPath is the default path of DNS queries at targets and proxies
	// (the path of RFC 9230 §4.1's examples and of RFC 8484 §6's).
	QueryPath = "/dns-query"
	// ConfigsPath is where a target publishes its ObliviousDoHConfigs and
	// where a proxy relays them (GET ?targethost=HOST). It is a convention
	// of Cloudflare and dnscrypt-proxy, not an IANA-registered well-known
	// URI: RFC 9230 §5 leaves config discovery open.
	ConfigsPath = "/.well-known/odohconfigs"

	// ContentType is the media type of ODoH messages (RFC 9230 §12.1).
	ContentType = "application/oblivious-dns-message"
	// DoHContentType is the media type of plain DNS over HTTPS (RFC 8484
	// §6), which a target may serve beside ODoH.
	DoHContentType = "application/dns-message"
	// ConfigsContentType is the media type ObliviousDoHConfigs are served
	// as: RFC 9230 defines none, and opaque bytes keep a browser from
	// treating them as active content.
	ConfigsContentType = "application/octet-stream"
)

// The size limits of ODoH messages (RFC 9230 §6.1): a type byte and two
// 16-bit length-prefixed fields. The key_id of a query is Nh bytes (64 for
// HKDF-SHA512), a response's resp_nonce max(Nn, Nk) bytes (32 for AES-256-GCM
// and ChaCha20-Poly1305), and an encrypted_message at most 65535 bytes.
// These constants are the largest over every suite this package supports;
// [MaxQuerySizeFor] and [MaxResponseSizeFor] give one suite's.
const (
	// MaxQuerySize is the largest query message (HTTP request body) of
	// any supported suite: 1 + 2 + 64 + 2 + 65535 bytes.
	MaxQuerySize = 1 + 2 + maxKeyIDSize + 2 + maxLen16
	// MaxResponseSize is the largest response message (HTTP response
	// body) of any supported suite: 1 + 2 + 32 + 2 + 65535 bytes.
	MaxResponseSize = 1 + 2 + maxRespNonceSize + 2 + maxLen16
	// MaxConfigsSize is the largest ObliviousDoHConfigs: a 16-bit length
	// and the configs (RFC 9230 §5).
	MaxConfigsSize = 2 + maxLen16

	maxKeyIDSize     = 64 // Nh of HKDF-SHA512
	maxRespNonceSize = 32 // Nk of AES-256-GCM and ChaCha20-Poly1305
)

// MaxQuerySizeFor is the largest query message of suite s.
func MaxQuerySizeFor(s Suite) int { return 1 + 2 + s.KDF.HashSize() + 2 + maxLen16 }

// MaxResponseSizeFor is the largest response message of suite s.
func MaxResponseSizeFor(s Suite) int { return 1 + 2 + s.AEAD.ResponseNonceSize() + 2 + maxLen16 }

// HasContentType reports whether the values of a Content-Type header are
// exactly one value naming mediaType, compared as internal/mediatype does
// for every fixed media type of this module (case-insensitively, with
// parameters ignored: neither RFC 9230 §12.1 nor RFC 8484 §6 defines any).
// A repeated or missing header does not match.
func HasContentType(values []string, mediaType string) bool {
	return mediatype.Single(values, mediaType)
}
