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
// path prefix and userinfo, when the endpoint has them — are the
// endpoint's; the request's own path (escapes kept), query and, when the
// endpoint has none, userinfo follow; the Host header follows the
// endpoint. The caller's *http.Request is never modified. Endpoints are
// base URLs ("https://eu.payments.example", "http://10.0.0.7:8080/api",
// "http://[fd00::7]:8080"), without a query or fragment.
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
// absolute http or https URL or has a query or fragment.
func FailoverTransport(set bulwark.EndpointPicker, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if set == nil {
		panic("bulwarkhttp: FailoverTransport: nil set")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	r := &rerouter{base: base, eps: map[string]*target{}}
	for _, ep := range set.Endpoints() {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			panic(fmt.Sprintf("bulwarkhttp: FailoverTransport: endpoint %q is not an absolute http(s) URL", ep))
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			panic(fmt.Sprintf("bulwarkhttp: FailoverTransport: endpoint %q has a query or fragment; an endpoint is a base URL", ep))
		}
		r.eps[ep] = &target{
			scheme:  u.Scheme,
			host:    u.Host,
			user:    u.User,
			path:    strings.TrimSuffix(u.Path, "/"),
			rawPath: strings.TrimSuffix(u.EscapedPath(), "/"),
		}
	}
	return Transport(set, r, opts...)
}

// rerouter sends a request to the endpoint in its context.
type rerouter struct {
	base http.RoundTripper
	eps  map[string]*target // read-only after construction
}

// target is an endpoint's base URL, its path prefix without a trailing
// slash, decoded and as written (so that escapes such as %2F survive).
type target struct {
	scheme, host  string
	user          *url.Userinfo
	path, rawPath string
}

var errNoEndpoint = errors.New("bulwarkhttp: FailoverTransport: the request's context names no endpoint of the set")

func (r *rerouter) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, ok := bulwark.EndpointFrom(req.Context())
	var u *target
	if ok {
		u = r.eps[ep]
	}
	if u == nil {
		closeRequestBody(req)
		return nil, errNoEndpoint
	}
	r2 := *req
	to := *req.URL
	to.Scheme, to.Host = u.scheme, u.host
	if u.user != nil {
		to.User = u.user // else the caller's, if any, is kept
	}
	if u.path != "" {
		escaped := u.rawPath + req.URL.EscapedPath()
		to.Path = u.path + req.URL.Path
		to.RawPath = escaped // used by String when it encodes Path
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
