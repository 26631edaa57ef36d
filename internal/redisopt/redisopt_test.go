package redisopt

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestContextTimeoutEnabled(t *testing.T) {
	var nilClient *redis.Client
	for _, tt := range []struct {
		name              string
		give              redis.UniversalClient
		wantOn, wantKnown bool
	}{
		{"client on", redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), true, true},
		{"client off", redis.NewClient(&redis.Options{}), false, true},
		{"cluster on", redis.NewClusterClient(&redis.ClusterOptions{ContextTimeoutEnabled: true}), true, true},
		{"ring off", redis.NewRing(&redis.RingOptions{}), false, true},
		{"typed nil", nilClient, false, false},
		{"nil", nil, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			on, known := ContextTimeoutEnabled(tt.give)
			if on != tt.wantOn || known != tt.wantKnown {
				t.Errorf("ContextTimeoutEnabled() = %v, %v, want %v, %v", on, known, tt.wantOn, tt.wantKnown)
			}
			if c, ok := tt.give.(interface{ Close() error }); ok && tt.give != nil && tt.name != "typed nil" {
				_ = c.Close()
			}
		})
	}
}
