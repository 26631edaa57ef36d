package bulwarkhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark"
)

// The headers bulwarkhttp reads and writes; headerPriority and headerIdempotencyKey are
// in canonical form for direct map lookups.
const (
	headerPriority        = "Bulwark-Priority"
	headerAttempt         = "Bulwark-Attempt"
	headerIdempotencyKey  = "Idempotency-Key"
	headerRetryAfter      = "Retry-After"
	headerRateLimit       = "RateLimit"
	headerRateLimitPolicy = "RateLimit-Policy"
	headerDrill           = "Bulwark-Drill"
	headerDegraded        = "Bulwark-Degraded"
)

// StatusCode returns the HTTP status a server answers err with, after the
// class table of SPEC.md: [bulwark.ErrRejected] is 429 Too Many Requests;
// [bulwark.ErrUnavailable], [bulwark.ErrRemoteRejected] (a downstream's 429
// is never relayed as ours), [bulwark.ErrRemoteUnavailable] and
// [bulwark.ErrTimeout] are 503 Service Unavailable; any other error is 500
// Internal Server Error. A nil err is 200.
func StatusCode(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, bulwark.ErrRejected):
		return http.StatusTooManyRequests
	case errors.Is(err, bulwark.ErrUnavailable),
		errors.Is(err, bulwark.ErrRemoteRejected),
		errors.Is(err, bulwark.ErrRemoteUnavailable),
		errors.Is(err, bulwark.ErrTimeout):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// WriteError writes the response for a refusal or a policy error: the status
// of [StatusCode]; Retry-After in whole seconds, rounded up and at least 1,
// when err carries a hint ([bulwark.RetryAfter]); the RateLimit and
// RateLimit-Policy headers when err carries a quota ([bulwark.QuotaFrom]),
// in which case Retry-After is the quota's t rounded up; Bulwark-Degraded
// with the switch's name when a degradation switch refused
// ([bulwark.Degraded]); and an RFC 9457
// application/problem+json body {type, title, status, detail}. The detail is err's message for a local refusal
// ([bulwark.ErrRejected], [bulwark.ErrUnavailable]: a policy's own
// message) and a fixed text otherwise, so that a downstream's or an
// unexpected error's text (hosts, addresses) does not leak to clients.
// err must not be nil.
func WriteError(w http.ResponseWriter, err error) {
	writeError(w, err, false)
}

// writeError is [WriteError]; for a HEAD request it writes the headers
// only, with the Content-Length the GET would have.
func writeError(w http.ResponseWriter, err error, head bool) {
	status := StatusCode(err)
	h := w.Header()
	var retry int64
	if d, ok := bulwark.RetryAfter(err); ok {
		retry = ceilSeconds(d)
	}
	if q, ok := bulwark.QuotaFrom(err); ok {
		setQuotaHeaders(h, q)
		if q.Reset > 0 {
			// Retry-After is t rounded up (the quota is read once, so the
			// two headers agree even if the hint moved meanwhile).
			retry = ceilSeconds(q.Reset)
		}
	}
	if retry > 0 {
		h.Set(headerRetryAfter, strconv.FormatInt(retry, 10))
	}
	if name, ok := bulwark.Degraded(err); ok {
		markDegraded(h, name)
	}
	body, _ := json.Marshal(problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: problemDetail(err, status),
	})
	if head {
		// What net/http would compute for the GET, which it cannot here.
		h.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		h.Del("Content-Length")
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if !head {
		_, _ = w.Write(body)
	}
}

// problemDetail is the detail of the problem body for err.
func problemDetail(err error, status int) string {
	switch {
	case bulwark.IsRefusal(err):
		// An http.Client's refusal comes wrapped in a *url.Error whose
		// message names the downstream's URL (host, query): keep only
		// the policy's own message.
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil && bulwark.IsRefusal(ue.Err) {
			return ue.Err.Error()
		}
		return err.Error()
	case status == http.StatusInternalServerError:
		return "the request could not be served"
	case errors.Is(err, bulwark.ErrTimeout):
		return "the request timed out"
	}
	return "a service this request depends on is unavailable"
}

// ceilSeconds rounds d up to whole seconds, at least 1. It does not add
// before dividing, which would overflow for a hint near the largest
// Duration.
func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second > 0 {
		s++
	}
	return max(s, 1)
}

// setQuotaHeaders sets RateLimit-Policy and RateLimit for q
// (draft-ietf-httpapi-ratelimit-headers-10).
func setQuotaHeaders(h http.Header, q bulwark.Quota) {
	name := sfString(q.Name)
	var b strings.Builder
	b.Grow(len(name) + 32)
	b.WriteString(name)
	b.WriteString(";q=")
	b.WriteString(strconv.FormatInt(max(q.Limit, 0), 10))
	if q.Window > 0 {
		b.WriteString(";w=")
		b.WriteString(strconv.FormatInt(ceilSeconds(q.Window), 10))
	}
	h.Set(headerRateLimitPolicy, b.String())
	b.Reset()
	b.WriteString(name)
	b.WriteString(";r=")
	b.WriteString(strconv.FormatInt(max(q.Remaining, 0), 10))
	b.WriteString(";t=")
	var t int64
	if q.Reset > 0 {
		t = ceilSeconds(q.Reset)
	}
	b.WriteString(strconv.FormatInt(t, 10))
	h.Set(headerRateLimit, b.String())
}

// sfString quotes s as an RFC 8941 sf-string: printable ASCII only, with
// '"' and '\' escaped; other bytes are dropped.
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
