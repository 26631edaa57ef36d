package bulwarkhttp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bulwark-go/bulwark"
)

// FailoverTransport sends each request to the endpoint set chooses for it:
// set (a failover.Set) picks an endpoint per call, under that endpoint's
// breaker, and the request goes out on a clone whose scheme and host — and
// path prefix, when the endpoint has one — are the endpoint's; the
// caller's *http.Request is never modified. Endpoints are base URLs
// ("https://eu.payments.example", "http://10.0.0.7:8080/api").
//
// It is [Transport] with set as its policy, so responses are classified as
// Transport classifies them (a 503 counts against that endpoint's breaker,
// a 429 does not), opts are Transport's, and a set with retry-on-next
// replays a request on the next endpoint only when Transport's replay rule
// allows it. Stack a retry outside for more attempts:
//
//	Transport(retrier, FailoverTransport(set, base))
//
// FailoverTransport panics if set is nil, or if an endpoint is not an
// absolute http or https URL.
func FailoverTransport(set bulwark.EndpointPicker, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if set == nil {
		panic("bulwarkhttp: FailoverTransport: nil set")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	r := &rerouter{base: base, eps: map[string]*url.URL{}}
	for _, ep := range set.Endpoints() {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			panic(fmt.Sprintf("bulwarkhttp: FailoverTransport: endpoint %q is not an absolute http(s) URL", ep))
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		r.eps[ep] = u
	}
	return Transport(set, r, opts...)
}

// rerouter sends a request to the endpoint in its context.
type rerouter struct {
	base http.RoundTripper
	eps  map[string]*url.URL // read-only after construction
}

var errNoEndpoint = errors.New("bulwarkhttp: FailoverTransport: the request's context names no endpoint of the set")

func (r *rerouter) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, ok := bulwark.EndpointFrom(req.Context())
	var u *url.URL
	if ok {
		u = r.eps[ep]
	}
	if u == nil {
		closeRequestBody(req)
		return nil, errNoEndpoint
	}
	r2 := *req
	to := *req.URL
	to.Scheme, to.Host, to.User = u.Scheme, u.Host, u.User
	if u.Path != "" {
		to.Path = u.Path + to.Path
		to.RawPath = ""
	}
	r2.URL = &to
	r2.Host = "" // the Host header follows the endpoint
	return r.base.RoundTrip(&r2)
}

// CloseIdleConnections closes the idle connections of the base transport.
func (r *rerouter) CloseIdleConnections() {
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
