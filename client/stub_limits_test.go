package client_test

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/odohd/odoh/client"
)

// TestStubTCPConnCap: past MaxTCPConnsPerClient a TCP connection from the
// same address is reset at once while another address still connects; past
// MaxTCPConns every address is refused; held connections keep their
// service throughout.
func TestStubTCPConnCap(t *testing.T) {
	// A query with no question is answered at once (FORMERR) without the
	// target, which need not exist.
	c, err := client.New(client.Config{Targets: []string{"https://127.0.0.1:9/dns-query"}, Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		name            string
		max, perClient  int
		held            []string // connections held, from these addresses
		refused, admits string   // then one from refused is refused, one from admits admitted
	}{
		{"per client", -1, 2, []string{"127.0.0.1", "127.0.0.1"}, "127.0.0.1", "127.0.0.2"},
		{"overall", 3, -1, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "127.0.0.4", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := runStub(t, client.StubConfig{Client: c, Addr: "127.0.0.1:0", MaxTCPConns: tc.max, MaxTCPConnsPerClient: tc.perClient})
			var held []*dns.Conn
			for i, ip := range tc.held {
				conn, err := dialTCPFrom(t, ip, st.Addr())
				if err == nil {
					err = stubExchange(conn)
				}
				if err != nil {
					t.Fatalf("connection %d from %s: %v", i+1, ip, err)
				}
				held = append(held, conn)
			}
			if err := dialAndAsk(t, tc.refused, st.Addr()); err == nil {
				t.Errorf("connection %d from %s answered, want it reset", len(tc.held)+1, tc.refused)
			}
			if tc.admits != "" {
				if err := dialAndAsk(t, tc.admits, st.Addr()); err != nil {
					t.Errorf("%s refused while only %s is at its cap: %v", tc.admits, tc.refused, err)
				}
			}
			for i, conn := range held {
				if err := stubExchange(conn); err != nil {
					t.Errorf("held connection %d lost its service: %v", i+1, err)
				}
			}
			// A held connection closed gives its slot back.
			held[0].Close()
			var err error
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if err = dialAndAsk(t, tc.held[0], st.Addr()); err == nil {
					break
				}
			}
			if err != nil {
				t.Errorf("after a held connection closed, %s still refused: %v", tc.held[0], err)
			}
		})
	}
}

// dialTCPFrom connects to addr over TCP from the loopback address ip.
func dialTCPFrom(t *testing.T, ip, addr string) (*dns.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	return &dns.Conn{Conn: nc}, nil
}

// dialAndAsk connects from ip and asks once: nil if answered. A refused
// connection fails either (reset before or after the handshake ends).
func dialAndAsk(t *testing.T, ip, addr string) error {
	t.Helper()
	conn, err := dialTCPFrom(t, ip, addr)
	if err != nil {
		return err
	}
	return stubExchange(conn)
}

// stubExchange sends a query without a question and reads the stub's
// answer (FORMERR, from its DNS server).
func stubExchange(conn *dns.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	q := new(dns.Msg)
	q.Id = dns.Id()
	if err := conn.WriteMsg(q); err != nil {
		return err
	}
	r, err := conn.ReadMsg()
	if err != nil {
		return err
	}
	if r.Id != q.Id || !r.Response {
		return &unexpected{r}
	}
	return nil
}

type unexpected struct{ r *dns.Msg }

func (u *unexpected) Error() string { return "unexpected answer: " + u.r.String() }
