package bulwarkhttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
)

// headerIdemReplayed marks a replayed response.
const headerIdemReplayed = "Idempotent-Replayed"

// idemStoredHeaders are the response headers that describe the body: stored
// with it and replayed.
var idemStoredHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Language", "Content-Disposition",
	"Content-Location", "Location", "Etag", "Last-Modified", "Cache-Control",
	"Expires", "Vary", "Link",
}

// idemDefaultMethods are the methods the key applies to by default: those
// not idempotent by definition.
var idemDefaultMethods = []string{http.MethodPost, http.MethodPatch}

// Idempotency returns middleware that gives Idempotency-Key semantics
// (draft-ietf-httpapi-idempotency-key-header) to the handler it wraps,
// with the records in store: a request with a key executes at most once,
// and a duplicate gets the stored status, headers and body, byte for byte,
// with Idempotent-Replayed: true, without running the handler. It takes
// the options of package idempotency (key required, scope, fingerprint,
// methods, sizes, lease, fail-open), whose documentation has the rules and
// the table of answers:
//
//	no key                       passes through untouched (400 with WithKeyRequired)
//	malformed key                400 problem+json
//	body over the request limit  413 problem+json
//	key reused, other request    422 problem+json
//	duplicate in flight          409 problem+json, Retry-After: 1
//	duplicate of an oversized    409 problem+json, Idempotent-Replayed: true
//	  response
//	store down or slow           503 problem+json, Retry-After: 1 (or executes, WithFailOpen)
//
// By default the key applies to POST and PATCH, the scope is the
// Authorization header (all anonymous callers share one scope), and the
// fingerprint is the method, the path with its query, and a SHA-256 of
// the body.
//
// The handler's response is held (up to the stored-size limit) until it
// is stored or released, then sent: a duplicate sent right after the
// answer replays it. A handler that flushes, or writes more than the
// limit, streams from then on; a response over the limit is sent in full
// and not stored. Stored: 2xx, 3xx and 4xx except 408, 409, 425 and 429,
// with Content-Type, Content-Encoding, Content-Language,
// Content-Disposition, Content-Location, Location, ETag, Last-Modified,
// Cache-Control, Expires, Vary and Link. Released (a retry executes): other
// statuses, a panic, a handler that wrote nothing and returned after its
// context ended (the client went away, or the lease ran out).
//
// The handler runs under a context that ends with the claim's lease. The
// wrapped writer keeps http.Flusher and Unwrap (for
// http.ResponseController).
func Idempotency(store idempotency.Store, opts ...idempotency.Option) func(http.Handler) http.Handler {
	g := idempotency.New(store, opts...)
	return func(next http.Handler) http.Handler {
		return &idemHandler{g: g, next: next}
	}
}

type idemHandler struct {
	g    *idempotency.Guard
	next http.Handler
	pool sync.Pool // *idemState
}

// idemState is the per-request buffers, reused.
type idemState struct {
	body    bytes.Buffer
	limit   io.LimitedReader
	rd      heldBody
	hash    hash.Hash
	scratch []byte
	w       idemWriter
}

// heldBody is the request body read for the fingerprint, handed to the
// handler.
type heldBody struct{ bytes.Reader }

func (*heldBody) Close() error { return nil }

func (h *idemHandler) get() *idemState {
	if s, ok := h.pool.Get().(*idemState); ok {
		return s
	}
	return &idemState{hash: sha256.New()}
}

func (h *idemHandler) put(s *idemState) {
	if s.body.Cap() > 64<<10 || s.w.buf.Cap() > 64<<10 {
		return // do not keep large buffers
	}
	s.body.Reset()
	s.rd.Reset(nil)
	s.w.buf.Reset()
	s.w.w, s.w.status, s.w.held = nil, 0, 0
	s.w.wroteHeader, s.w.streaming, s.w.oversized = false, false, false
	h.pool.Put(s)
}

func (h *idemHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := h.g
	if !g.Applies(r.Method, idemDefaultMethods) {
		h.next.ServeHTTP(w, r)
		return
	}
	key, err := g.Key(r.Header[headerIdempotencyKey])
	if err != nil {
		writeIdemError(w, err)
		return
	}
	if key == "" {
		h.next.ServeHTTP(w, r)
		return
	}
	s := h.get()
	defer h.put(s)

	var fp idempotency.Fingerprint
	// The body is read (to be hashed) only when fingerprints are on;
	// otherwise the handler reads it from the client as usual.
	hasBody := g.Fingerprinted() && r.Body != nil && r.Body != http.NoBody
	if hasBody {
		max := g.MaxRequestBytes()
		s.limit = io.LimitedReader{R: r.Body, N: max + 1}
		n, err := s.body.ReadFrom(&s.limit)
		s.limit.R = nil
		var mbe *http.MaxBytesError
		switch {
		case n > max || errors.As(err, &mbe):
			writeIdemError(w, g.Invalid(idempotency.ErrRequestTooLarge))
			return
		case err != nil:
			if r.Context().Err() == nil {
				writeIdemError(w, g.Invalid(errIdemBodyUnreadable))
			}
			return
		}
	}
	if g.Fingerprinted() {
		b := append(s.scratch[:0], r.Method...)
		b = append(b, 0)
		b = append(b, r.URL.EscapedPath()...)
		b = append(b, '?')
		b = append(b, r.URL.RawQuery...)
		b = append(b, 0)
		s.scratch = b
		s.hash.Reset()
		s.hash.Write(b)
		s.hash.Write(s.body.Bytes())
		s.hash.Sum(fp[:0])
	}
	scope := ""
	if auth := r.Header["Authorization"]; len(auth) == 1 {
		scope = auth[0]
	} else if len(auth) > 1 {
		scope = strings.Join(auth, "\n")
	}

	call, rec, err := g.Begin(r.Context(), key, scope, fp)
	switch {
	case rec != nil && err == nil:
		replayIdem(w, rec)
		return
	case err != nil:
		if r.Context().Err() == nil {
			writeIdemError(w, err)
		}
		return
	}

	ctx, cancel := call.Context(r.Context())
	defer cancel()
	r2 := r.WithContext(ctx)
	if hasBody {
		s.rd.Reset(s.body.Bytes())
		r2.Body = &s.rd
	}
	iw := &s.w
	iw.w, iw.max = w, g.MaxResponseBytes()
	normal := false
	defer func() {
		if !normal {
			// A panic (or runtime.Goexit): the work may be half done;
			// release so that a retry executes, and let the panic go on.
			_ = call.Release(ctx)
		}
	}()
	h.next.ServeHTTP(iw, r2)
	normal = true

	switch {
	case !iw.wroteHeader && ctx.Err() != nil:
		// Nothing written and the context ended: the client went away
		// or the lease ran out. Release; write nothing.
		_ = call.Release(ctx)
		return
	case !iw.wroteHeader:
		iw.WriteHeader(http.StatusOK)
	}
	if h.storable(iw.status) {
		rec := idempotency.Record{Status: iw.status, Oversized: iw.oversized}
		if !iw.oversized {
			rec.Body = iw.buf.Bytes()
		}
		hdr := w.Header()
		for _, name := range idemStoredHeaders {
			for _, v := range hdr[name] {
				rec.Header = append(rec.Header, idempotency.Field{Name: name, Value: v})
			}
		}
		_ = call.Complete(ctx, &rec)
	} else {
		_ = call.Release(ctx)
	}
	iw.send()
}

// storable reports whether a response with status is stored.
func (h *idemHandler) storable(status int) bool {
	switch {
	case status >= 200 && status < 400:
		return true
	case status >= 400 && status < 500:
		switch status {
		case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
			return false
		}
		return true
	case status >= 500 && status < 600:
		return h.g.StoresServerErrors() && status != http.StatusServiceUnavailable
	}
	return false
}

// idemReplayedTrue is the value of Idempotent-Replayed, shared by every
// replay (net/http only reads it).
var idemReplayedTrue = []string{"true"}

// replayIdem writes a stored response.
func replayIdem(w http.ResponseWriter, rec *idempotency.Record) {
	h := w.Header()
	for _, f := range rec.Header {
		h[f.Name] = append(h[f.Name], f.Value)
	}
	h[headerIdemReplayed] = idemReplayedTrue
	h["Content-Length"] = []string{strconv.Itoa(len(rec.Body))}
	w.WriteHeader(rec.Status)
	if len(rec.Body) > 0 {
		_, _ = w.Write(rec.Body)
	}
}

var errIdemBodyUnreadable = errors.New("bulwarkhttp: the request body could not be read")

// writeIdemError answers a request the Guard refused.
func writeIdemError(w http.ResponseWriter, err error) {
	status, detail := http.StatusInternalServerError, "the request could not be served"
	var retry time.Duration
	switch {
	case errors.Is(err, idempotency.ErrInvalidKey), errors.Is(err, idempotency.ErrKeyRequired),
		errors.Is(err, errIdemBodyUnreadable):
		status, detail = http.StatusBadRequest, err.Error()
	case errors.Is(err, idempotency.ErrRequestTooLarge):
		status, detail = http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, idempotency.ErrMismatch):
		status, detail = http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, idempotency.ErrInFlight):
		status, detail, retry = http.StatusConflict, err.Error(), time.Second
	case errors.Is(err, idempotency.ErrNotReplayable):
		status, detail = http.StatusConflict, err.Error()
		w.Header().Set(headerIdemReplayed, "true")
	case errors.Is(err, idempotency.ErrStoreUnavailable):
		// Not the store's own message: it may name hosts.
		status, detail, retry = http.StatusServiceUnavailable, idempotency.ErrStoreUnavailable.Error(), time.Second
	}
	if d, ok := idemRetryHint(err); ok && retry > 0 {
		retry = d
	}
	writeIdemProblem(w, status, detail, retry)
}

func idemRetryHint(err error) (time.Duration, bool) {
	var h interface{ RetryAfter() time.Duration }
	if errors.As(err, &h) && h.RetryAfter() > 0 {
		return h.RetryAfter(), true
	}
	return 0, false
}

// writeIdemProblem writes an RFC 9457 problem with status and detail, and
// Retry-After when retry > 0.
func writeIdemProblem(w http.ResponseWriter, status int, detail string, retry time.Duration) {
	h := w.Header()
	if retry > 0 {
		h.Set(headerRetryAfter, strconv.FormatInt(ceilSeconds(retry), 10))
	}
	body, _ := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	h.Del("Content-Length")
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// idemWriter holds the handler's response until it is stored (or
// released), capturing the body up to max bytes. Flush, or a body over
// max, switches it to streaming: what was held is sent, and the rest goes
// straight through.
type idemWriter struct {
	w           http.ResponseWriter
	max         int64
	status      int
	wroteHeader bool
	streaming   bool // the status was sent
	oversized   bool // the body went over max: buf is no longer the body
	held        int  // bytes of buf not sent yet
	buf         bytes.Buffer
}

func (w *idemWriter) Header() http.Header { return w.w.Header() }

func (w *idemWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.w.WriteHeader(code) // informational: pass through
		}
		return
	}
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
}

func (w *idemWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.oversized && int64(w.buf.Len()+len(p)) > w.max {
		w.oversized = true
		if err := w.stream(); err != nil {
			return 0, err
		}
		w.buf.Reset()
	}
	if !w.oversized {
		w.buf.Write(p)
		if !w.streaming {
			w.held = w.buf.Len()
			return len(p), nil
		}
	}
	if w.streaming {
		return w.w.Write(p)
	}
	return len(p), nil
}

// stream sends the status and what is held, and passes writes through
// from now on.
func (w *idemWriter) stream() error {
	if !w.streaming {
		w.streaming = true
		w.w.WriteHeader(w.status)
	}
	if w.held > 0 {
		held := w.buf.Bytes()[w.buf.Len()-w.held:]
		w.held = 0
		if _, err := w.w.Write(held); err != nil {
			return err
		}
	}
	return nil
}

// send sends what is still held, after the response was stored.
func (w *idemWriter) send() {
	_ = w.stream()
}

// Flush sends what is held and flushes the underlying writer.
func (w *idemWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = w.stream()
	_ = http.NewResponseController(w.w).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *idemWriter) Unwrap() http.ResponseWriter { return w.w }
