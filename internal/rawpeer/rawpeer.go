// Package rawpeer plays the far end of an HTTPS connection in memory and
// answers one request with whatever bytes a test (a fuzz target) gives it:
// a target behind the proxy, a proxy behind the client. The real client
// transport (net/http's HTTP/1.1 and HTTP/2) parses those bytes, so fuzzing
// reaches the code behind the parsers with arbitrary responses.
//
// Each [Peer.Dial] makes a kernel socket pair (no port, no network), runs a
// TLS server on one end and returns the other. The server reads one
// request (HTTP/2 when ALPN says so, else HTTP/1.1), hands it to Respond,
// writes the bytes it returns after its own HTTP/2 SETTINGS, and closes the
// connection, so that every exchange ends, complete or not.
package rawpeer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Request is what the peer read.
type Request struct {
	Proto  string // "h2" or "http/1.1"
	Method string
	Path   string // with the query
	Host   string
	Header http.Header // regular fields only, canonical keys
	Body   []byte
}

// Peer answers the connections it makes.
type Peer struct {
	// TLS is the server configuration; its NextProtos picks the protocol.
	TLS *tls.Config
	// Respond returns the bytes to write after the request. For HTTP/2
	// they follow the server's SETTINGS frame; the request is stream 1.
	Respond func(Request) []byte
	// MaxDials bounds the connections answered; later dials fail. Zero
	// means one, so that a transport's retry cannot loop.
	MaxDials int

	mu    sync.Mutex
	dials int
	wg    sync.WaitGroup
	reqs  []Request
	errs  []error
}

// Dial returns a new connection to the peer (for a transport's
// DialContext; the arguments are ignored).
func (p *Peer) Dial(context.Context, string, string) (net.Conn, error) {
	p.mu.Lock()
	max := p.MaxDials
	if max == 0 {
		max = 1
	}
	if p.dials >= max {
		p.mu.Unlock()
		return nil, errors.New("rawpeer: no more connections")
	}
	p.dials++
	p.mu.Unlock()
	client, server, err := socketPair()
	if err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := p.serve(server)
		if err != nil {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}
	}()
	return client, nil
}

// Wait waits for every connection's server to finish and returns the
// requests they read and whether the server failed before reading one.
func (p *Peer) Wait() ([]Request, error) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs, errors.Join(p.errs...)
}

func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("rawpeer: socketpair: %w", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "rawpeer")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				syscall.Close(fds[1])
			}
			return nil, nil, fmt.Errorf("rawpeer: %w", err)
		}
		conns[i] = c
	}
	return conns[0], conns[1], nil
}

func (p *Peer) serve(raw net.Conn) error {
	defer raw.Close()
	tc := tls.Server(raw, p.TLS)
	if err := tc.Handshake(); err != nil {
		return nil // the client gave up (or refused the certificate)
	}
	var req Request
	var err error
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
		req, err = readH2(tc)
	default:
		req, err = readH1(tc)
	}
	if err != nil {
		return nil // the client went away mid-request: nothing to answer
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	// Drain whatever the client sends from now on (window updates,
	// acknowledgements, resets), so that its writes never block.
	go func() { _, _ = io.Copy(io.Discard, tc) }()
	_, _ = tc.Write(p.Respond(req))
	return nil
}

func readH1(c net.Conn) (Request, error) {
	r, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return Request{}, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return Request{}, err
	}
	return Request{Proto: "http/1.1", Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Header: r.Header, Body: body}, nil
}

// readH2 reads the client preface and frames up to the end of stream 1,
// acknowledging the client's SETTINGS after sending its own.
func readH2(c net.Conn) (Request, error) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return Request{}, errors.New("rawpeer: no HTTP/2 preface")
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return Request{}, err
	}
	req := Request{Proto: "h2", Header: http.Header{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return Request{}, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return Request{}, err
				}
			}
		case *http2.MetaHeadersFrame:
			for _, hf := range f.Fields {
				switch hf.Name {
				case ":method":
					req.Method = hf.Value
				case ":path":
					req.Path = hf.Value
				case ":authority":
					req.Host = hf.Value
				case ":scheme":
				default:
					req.Header.Add(hf.Name, hf.Value)
				}
			}
			if f.StreamEnded() {
				return req, nil
			}
		case *http2.DataFrame:
			req.Body = append(req.Body, f.Data()...)
			if f.StreamEnded() {
				return req, nil
			}
		}
	}
}

// H2Response encodes a response on stream 1 as HTTP/2 frames: HEADERS with
// :status and the fields (pairs of name and value, sent as given), then
// the body in DATA frames of at most chunk bytes (one frame when chunk is
// not positive). With no body, HEADERS ends the stream.
func H2Response(status string, fields []string, body []byte, chunk int) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(),
		EndHeaders: true, EndStream: len(body) == 0})
	if chunk <= 0 {
		chunk = len(body)
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		_ = fr.WriteData(1, n == len(body), body[:n])
		body = body[n:]
	}
	return out.Bytes()
}

// H1Response encodes an HTTP/1.1 response with the fields (pairs of name
// and value, sent as given) and the body, framed by a Content-Length when
// length is not negative, else by closing the connection.
func H1Response(status string, fields []string, body []byte, length int) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + " X\r\n")
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString(fields[i] + ": " + fields[i+1] + "\r\n")
	}
	if length >= 0 {
		b.WriteString("Content-Length: " + strconv.Itoa(length) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// SafeValue reports whether v can be sent as a field value by both
// protocols and reads back unchanged (no control bytes, no bytes beyond
// ASCII, no surrounding white space): a fuzz target's oracle holds only
// for such values.
func SafeValue(v string) bool {
	if strings.TrimSpace(v) != v {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f || c >= 0x80 {
			return false
		}
	}
	return true
}
