package scenarios

import (
	"net/http"
	"sync/atomic"
	"time"
)

// provider is a downstream that answers 200 after a short delay, or 503
// at once while it is down, and counts the calls that reach it.
type provider struct {
	down      atomic.Bool
	calls     atomic.Int64
	downCalls atomic.Int64 // calls that reached it while down
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	if p.down.Load() {
		p.downCalls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	time.Sleep(2 * time.Millisecond)
	w.WriteHeader(http.StatusOK)
}

// failed5xx is failsafe-go's failure condition for HTTP: an error or a 5xx.
func failed5xx(r *http.Response, err error) bool {
	return err != nil || (r != nil && r.StatusCode >= 500)
}
