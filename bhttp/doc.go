// Package bhttp implements Binary HTTP messages (RFC 9292, media type
// message/bhttp): the encoding of an HTTP request or response, with its
// control data, header and trailer fields and content, as one sequence of
// bytes. Oblivious HTTP (RFC 9458, package ohttp) encrypts these messages.
//
// [ParseRequest] and [ParseResponse] decode both framings: known-length
// (framing indicators 0 and 1, §3.1) and indeterminate-length (2 and 3,
// §3.2), with informational responses (§3.5.1), padding and truncation
// (§3.8). [Request.Append] and [Response.Append] encode them; the
// [Encoding] chooses the framing, truncation and padding.
//
// Parsing is strict, as RFC 9292 §4 and §7 advise, and never panics:
//   - a framing indicator other than 0 to 3, or the wrong one for the kind
//     of message asked for, is invalid;
//   - a method must be a token, a scheme a URI scheme, and the authority
//     and path visible ASCII; a path is non-empty ("*" only with OPTIONS),
//     and CONNECT, which has neither scheme nor path, is refused;
//   - a status code must be 100 to 199 for an informational response and
//     200 to 599 for the final one;
//   - field names must be tokens, so a pseudo-field such as ":path" is
//     invalid; names are folded to lower case (HTTP/2 forbids upper case,
//     RFC 9113 §8.2.1, but Firefox sends "Content-Type" as its channel was
//     given it, so upper case is accepted); field values must not contain
//     NUL, CR or LF nor start or end with a space or tab;
//   - a message may be truncated only where a section would start (the
//     header section, the content, the trailer section), as RFC 9292 §3.8
//     and the example of RFC 9458 Appendix A do; missing sections are
//     empty. Anything else that ends early is invalid;
//   - padding must be all zeros, and nothing may follow it.
//
// Every error wraps [ErrMalformed] or, for a message over the [Limits],
// [ErrTooLarge]. The input length bounds everything else: parsed content
// aliases the input when it arrives in one piece.
package bhttp
