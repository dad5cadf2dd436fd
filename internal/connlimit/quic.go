package connlimit

import (
	"context"
	"net"

	"github.com/quic-go/quic-go"
)

// QUICConnContext is a quic.Transport's ConnContext: it takes the new
// connection's slot, or refuses it (quic-go answers CONNECTION_REFUSED
// before any handshake work), and gives the slot back when the
// connection's context ends (the connection closed or its handshake
// failed).
func (l *Limiter) QUICConnContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	client := AddrOf(info.RemoteAddr)
	if err := l.Acquire(client); err != nil {
		return ctx, err
	}
	context.AfterFunc(ctx, func() { l.Release(client) })
	return ctx, nil
}

// QUICVerifySourceAddress is a quic.Transport's VerifySourceAddress: an
// Initial's source address is unverified and may be spoofed to spend
// another client's slots, so once a client holds half its cap, or the
// server half of its own, a new connection must first prove its address
// with a Retry (one round trip more for it, nothing for the others).
func (l *Limiter) QUICVerifySourceAddress(addr net.Addr) bool {
	if l.max > 0 && 2*l.total.Load() >= l.max {
		return true
	}
	if l.perClient <= 0 {
		return false
	}
	return 2*l.clientConns(ClientKey(AddrOf(addr))) >= l.perClient
}
