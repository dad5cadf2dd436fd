package client

import "time"

// SetFetchDelays replaces the delays of background config fetches (before
// expiry, given the configs' lifetime, and after a 401), so that tests need
// not wait for real max-ages. Call it before the first query.
func SetFetchDelays(c *Client, refresh func(ttl time.Duration) time.Duration, refetch func() time.Duration) {
	c.configs.refreshIn, c.configs.refetchIn = refresh, refetch
}

// CurrentKeyID returns the key ID of the config the client seals queries
// to target i with now (nil before any fetch).
func CurrentKeyID(c *Client, i int) []byte {
	if s := c.targets[i].cfg.cur.Load(); s != nil {
		return s.cfg.KeyID()
	}
	return nil
}
