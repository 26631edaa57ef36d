package health

import (
	"context"
	"fmt"
	"reflect"
)

// PingCheck makes a check of a Ping method: ping is a method value such as
// db.PingContext (database/sql: returns an error) or rdb.Ping (go-redis:
// returns a *redis.StatusCmd, whose Err is used). R must be error or have
// an Err() error method; otherwise PingCheck panics. ping gets the check's
// context, which ends at the check's timeout: with go-redis, set
// ContextTimeoutEnabled so that a stalled server cannot outlast it.
//
//	c.Register("db", health.PingCheck(db.PingContext), health.WithComponentType("datastore"))
//	c.Register("redis", health.PingCheck(rdb.Ping), health.WithComponentType("datastore"))
func PingCheck[R any](ping func(context.Context) R) func(context.Context) error {
	if ping == nil {
		panic("health: PingCheck(nil)")
	}
	t := reflect.TypeFor[R]()
	errType := reflect.TypeFor[error]()
	switch {
	case t == errType:
		return func(ctx context.Context) error {
			err, _ := any(ping(ctx)).(error)
			return err
		}
	case t.Implements(reflect.TypeFor[interface{ Err() error }]()):
		return func(ctx context.Context) error {
			r := ping(ctx)
			return any(r).(interface{ Err() error }).Err()
		}
	}
	panic(fmt.Sprintf("health: PingCheck: %v is neither error nor has an Err() error method", t))
}
