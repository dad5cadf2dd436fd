package bhttp

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The examples of RFC 9292 §5 and the messages of RFC 9458 Appendix A,
// decoded and then re-encoded byte for byte.

var rfcRequest = &Request{
	Method: "GET", Scheme: "https", Authority: "", Path: "/hello.txt",
	Header: Fields{
		{"user-agent", "curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3"},
		{"host", "www.example.com"},
		{"accept-language", "en, mi"},
	},
}

func TestRFC9292Requests(t *testing.T) {
	testCases := []struct {
		name string
		hex  string
		enc  Encoding
	}{
		{"known-length (§5.1)", `
			00034745 54056874 74707300 0a2f6865 6c6c6f2e 74787440 6c0a7573 65722d61
			67656e74 34637572 6c2f372e 31362e33 206c6962 6375726c 2f372e31 362e3320
			4f70656e 53534c2f 302e392e 376c207a 6c69622f 312e322e 3304686f 73740f77
			77772e65 78616d70 6c652e63 6f6d0f61 63636570 742d6c61 6e677561 67650665
			6e2c206d 690000`, Encoding{}},
		{"indeterminate-length with 10 bytes of padding (§5.1)", `
			02034745 54056874 74707300 0a2f6865 6c6c6f2e 7478740a 75736572 2d616765
			6e743463 75726c2f 372e3136 2e33206c 69626375 726c2f37 2e31362e 33204f70
			656e5353 4c2f302e 392e376c 207a6c69 622f312e 322e3304 686f7374 0f777777
			2e657861 6d706c65 2e636f6d 0f616363 6570742d 6c616e67 75616765 06656e2c
			206d6900 00000000 00000000 00000000`, Encoding{Indeterminate: true, Padding: 10}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.hex)
			r, err := ParseRequest(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, rfcRequest) {
				t.Fatalf("decoded %+v, want %+v", r, rfcRequest)
			}
			out, err := r.Append(nil, tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoded\n%x\nwant\n%x", out, in)
			}
		})
	}
	// "The last two bytes ... can each be removed without altering the
	// semantics of the message", and "anything up to 12 bytes" of the
	// indeterminate-length one.
	known := unhex(t, testCases[0].hex)
	for cut := 1; cut <= 2; cut++ {
		r, err := ParseRequest(known[:len(known)-cut])
		if err != nil || !reflect.DeepEqual(r, rfcRequest) {
			t.Fatalf("known-length without its last %d bytes: %+v, %v", cut, r, err)
		}
	}
	if r, err := ParseRequest(known[:len(known)-3]); err == nil {
		t.Fatalf("known-length cut into its header section parsed: %+v", r)
	}
	out, err := rfcRequest.Append(nil, Encoding{Truncate: true})
	if err != nil || !bytes.Equal(out, known[:len(known)-2]) {
		t.Fatalf("truncated encoding %x (%v), want the example without its last two bytes", out, err)
	}
	indet := unhex(t, testCases[1].hex)
	for cut := 1; cut <= 12; cut++ {
		r, err := ParseRequest(indet[:len(indet)-cut])
		if err != nil || !reflect.DeepEqual(r, rfcRequest) {
			t.Fatalf("indeterminate-length without its last %d bytes: %+v, %v", cut, r, err)
		}
	}
	if r, err := ParseRequest(indet[:len(indet)-13]); err == nil {
		t.Fatalf("indeterminate-length without its header terminator parsed: %+v", r)
	}
}

func TestRFC9292Responses(t *testing.T) {
	testCases := []struct {
		name string
		hex  string
		enc  Encoding
		want *Response
	}{
		{"indeterminate-length with informational responses (§5.2)", `
			03406607 72756e6e 696e670a 22736c65 65702031 35220040 67046c69 6e6b233c
			2f737479 6c652e63 73733e3b 2072656c 3d707265 6c6f6164 3b206173 3d737479
			6c65046c 696e6b24 3c2f7363 72697074 2e6a733e 3b207265 6c3d7072 656c6f61
			643b2061 733d7363 72697074 0040c804 64617465 1d4d6f6e 2c203237 204a756c
			20323030 39203132 3a32383a 35332047 4d540673 65727665 72064170 61636865
			0d6c6173 742d6d6f 64696669 65641d57 65642c20 3232204a 756c2032 30303920
			31393a31 353a3536 20474d54 04657461 67142233 34616133 38372d64 2d313536
			38656230 30220d61 63636570 742d7261 6e676573 05627974 65730e63 6f6e7465
			6e742d6c 656e6774 68023531 04766172 790f4163 63657074 2d456e63 6f64696e
			670c636f 6e74656e 742d7479 70650a74 6578742f 706c6169 6e003348 656c6c6f
			20576f72 6c642120 4d792063 6f6e7465 6e742069 6e636c75 64657320 61207472
			61696c69 6e672043 524c462e 0d0a0000`,
			Encoding{Indeterminate: true},
			&Response{
				Informational: []Informational{
					{102, Fields{{"running", `"sleep 15"`}}},
					{103, Fields{{"link", "</style.css>; rel=preload; as=style"}, {"link", "</script.js>; rel=preload; as=script"}}},
				},
				Status: 200,
				Header: Fields{
					{"date", "Mon, 27 Jul 2009 12:28:53 GMT"},
					{"server", "Apache"},
					{"last-modified", "Wed, 22 Jul 2009 19:15:56 GMT"},
					{"etag", `"34aa387-d-1568eb00"`},
					{"accept-ranges", "bytes"},
					{"content-length", "51"},
					{"vary", "Accept-Encoding"},
					{"content-type", "text/plain"},
				},
				Content: []byte("Hello World! My content includes a trailing CRLF.\r\n"),
			}},
		{"known-length with trailers (§5.2)", `
			0140c800 1d546869 7320636f 6e74656e 7420636f 6e746169 6e732043 524c462e
			0d0a0d07 74726169 6c657204 74657874`,
			Encoding{},
			&Response{
				Status:  200,
				Content: []byte("This content contains CRLF.\r\n"),
				Trailer: Fields{{"trailer", "text"}},
			}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.hex)
			r, err := ParseResponse(in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, tc.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", r, tc.want)
			}
			out, err := r.Append(nil, tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoded\n%x\nwant\n%x", out, in)
			}
		})
	}
}

// RFC 9458 Appendix A carries a GET of https://example.com/ and a bare
// 200, both truncated after their control data.
func TestRFC9458Messages(t *testing.T) {
	req := unhex(t, "00034745540568747470730b6578616d706c652e636f6d012f")
	r, err := ParseRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Request{Method: "GET", Scheme: "https", Authority: "example.com", Path: "/"}); !reflect.DeepEqual(r, want) {
		t.Fatalf("request %+v, want %+v", r, want)
	}
	if out, err := r.Append(nil, Encoding{Truncate: true}); err != nil || !bytes.Equal(out, req) {
		t.Fatalf("request re-encoded %x (%v)", out, err)
	}
	res := unhex(t, "0140c8")
	s, err := ParseResponse(res)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, &Response{Status: 200}) {
		t.Fatalf("response %+v", s)
	}
	if out, err := s.Append(nil, Encoding{Truncate: true}); err != nil || !bytes.Equal(out, res) {
		t.Fatalf("response re-encoded %x (%v)", out, err)
	}
}
