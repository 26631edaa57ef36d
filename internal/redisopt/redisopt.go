// Package redisopt holds what bulwark's Redis-backed stores check of the
// go-redis client they are given.
package redisopt

import "github.com/redis/go-redis/v9"

// ContextTimeoutEnabled reports the ContextTimeoutEnabled option of c when
// c is one of go-redis's own client types (*redis.Client,
// *redis.ClusterClient, *redis.Ring); known is false for any other type
// (a wrapper), whose options cannot be read. Without the option go-redis
// does not honour context deadlines on socket reads (SPEC: every Redis call
// runs under a timeout), so the stores refuse such a client at
// construction.
func ContextTimeoutEnabled(c redis.UniversalClient) (enabled, known bool) {
	switch c := c.(type) {
	case *redis.Client:
		return c != nil && c.Options().ContextTimeoutEnabled, c != nil
	case *redis.ClusterClient:
		return c != nil && c.Options().ContextTimeoutEnabled, c != nil
	case *redis.Ring:
		return c != nil && c.Options().ContextTimeoutEnabled, c != nil
	}
	return false, false
}
