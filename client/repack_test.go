package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/odoh"
)

// noRepackAnswer is an answer to fuzzQuery that the DNS library unpacks
// but cannot pack back into a readable message: its answer section is a
// TSIG with empty RDATA, which packs without its algorithm name. (Found
// by FuzzStub: the stub relayed it as bytes its client could not read.)
var noRepackAnswer = []byte("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" +
	"\x03www\x07example\x03com\x00\x00\x01\x00\x01" +
	"\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00")

// answering has ft seal answer to every query.
func answering(ft *fuzzTransport, answer []byte) {
	ft.reset(func(hr *http.Request, oq *odoh.Query) (*http.Response, error) {
		body, err := oq.SealResponse(answer)
		if err != nil {
			return nil, err
		}
		return fuzzHTTPResponse(hr, 200, odoh.ContentType, "", body, 1), nil
	})
}

// TestAnswerThatCannotRepackIsBadResponse: Exchange refuses an answer it
// cannot pack back (ErrBadResponse, naming why), and the stub answers its
// client SERVFAIL for it, over UDP and TCP, never the unreadable bytes.
func TestAnswerThatCannotRepackIsBadResponse(t *testing.T) {
	if err := new(dns.Msg).Unpack(noRepackAnswer); err != nil {
		t.Fatalf("the answer must unpack for the test to mean anything: %v", err)
	}
	c, ft, _ := fuzzClient(t, ConfigStatic, nil)
	answering(ft, noRepackAnswer)
	q := new(dns.Msg)
	if err := q.Unpack(fuzzQuery(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := c.Exchange(ctx, q)
	if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "cannot be relayed") {
		t.Fatalf("answer %v, error %v; want ErrBadResponse", a, err)
	}

	s, err := NewStub(StubConfig{Client: c, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, udp := range []bool{true, false} {
		wire := fuzzQuery(t)
		r := fuzzServe(t, s, wire, q, udp) // fails unless the reply unpacks
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("udp %v: stub answered %s, want SERVFAIL", udp, dns.RcodeToString[r.Rcode])
		}
	}
}
