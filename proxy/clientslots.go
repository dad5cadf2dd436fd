package proxy

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

// clientSlots caps the requests each client (the rate limiter's key) has in
// progress, from reading its body to answering it, so that one client
// cannot hold every stream the server will serve. A client has an entry only
// while it has a request in progress, so memory is bounded by the requests
// being handled; an entry is deleted when its count falls back to zero.
type clientSlots struct {
	max    int
	seed   maphash.Seed
	shards [limiterShards]slotShard
}

type slotShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int
	_  [40]byte // keep shards on separate cache lines
}

func newClientSlots(max int) *clientSlots {
	c := &clientSlots{max: max, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[netip.Addr]int)
	}
	return c
}

func (c *clientSlots) shard(key netip.Addr) *slotShard {
	b16 := key.As16()
	return &c.shards[maphash.Bytes(c.seed, b16[:])%limiterShards]
}

// acquire takes one of key's slots, reporting false if it has none left.
func (c *clientSlots) acquire(key netip.Addr) bool {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := sh.m[key]
	if n >= c.max {
		return false
	}
	sh.m[key] = n + 1
	return true
}

// release gives back a slot that acquire took.
func (c *clientSlots) release(key netip.Addr) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n := sh.m[key] - 1; n > 0 {
		sh.m[key] = n
	} else {
		delete(sh.m, key)
	}
}

// size returns the number of clients with requests in progress (for tests).
func (c *clientSlots) size() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
