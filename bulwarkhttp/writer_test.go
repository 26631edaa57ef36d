package bulwarkhttp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fakeWriter is the underlying writer of the table over every combination
// of optional interfaces; the generated fakeN types add them.
type fakeWriter struct {
	header http.Header
	status int
	body   strings.Builder
	calls  []string
}

func (w *fakeWriter) log(name string)     { w.calls = append(w.calls, name) }
func (w *fakeWriter) Header() http.Header { return w.header }
func (w *fakeWriter) WriteHeader(code int) {
	w.log("WriteHeader")
	if w.status == 0 {
		w.status = code
	}
}

func (w *fakeWriter) Write(b []byte) (int, error) {
	w.log("Write")
	return w.body.Write(b)
}

func passThrough(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) }

type policyFunc func(context.Context, func(context.Context) error) error

func (f policyFunc) Do(ctx context.Context, fn func(context.Context) error) error { return f(ctx, fn) }

// TestWriterKeepsEveryOptionalInterface serves a request through the
// middleware over an underlying writer of each of the 32 combinations of
// optional interfaces: the handler's writer has exactly the same ones,
// each reaches the underlying writer, and Unwrap returns it.
func TestWriterKeepsEveryOptionalInterface(t *testing.T) {
	type iface struct {
		bit  int
		name string
		has  func(http.ResponseWriter) bool
		call func(http.ResponseWriter)
	}
	ifaces := []iface{
		{hasFlusher, "Flush", func(w http.ResponseWriter) bool { _, ok := w.(http.Flusher); return ok },
			func(w http.ResponseWriter) { w.(http.Flusher).Flush() }},
		{hasHijacker, "Hijack", func(w http.ResponseWriter) bool { _, ok := w.(http.Hijacker); return ok },
			func(w http.ResponseWriter) { _, _, _ = w.(http.Hijacker).Hijack() }},
		{hasReaderFrom, "ReadFrom", func(w http.ResponseWriter) bool { _, ok := w.(io.ReaderFrom); return ok },
			func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("x")) }},
		{hasPusher, "Push", func(w http.ResponseWriter) bool { _, ok := w.(http.Pusher); return ok },
			func(w http.ResponseWriter) { _ = w.(http.Pusher).Push("/a", nil) }},
		{hasCloseNotifier, "CloseNotify", func(w http.ResponseWriter) bool { _, ok := w.(closeNotifier); return ok },
			func(w http.ResponseWriter) { _ = w.(closeNotifier).CloseNotify() }},
	}
	for k := range numWriterKinds {
		under := newFakeWriter(k)
		var got []string
		var unwrapped http.ResponseWriter
		h := Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, f := range ifaces {
				if f.has(w) != (k&f.bit != 0) {
					t.Errorf("kind %d: %s present = %v, want %v", k, f.name, f.has(w), k&f.bit != 0)
				}
				if f.has(w) {
					f.call(w)
					got = append(got, f.name)
				}
			}
			if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
				unwrapped = u.Unwrap()
			}
			_, _ = io.WriteString(w, "body")
		}), policyFunc(passThrough))
		h.ServeHTTP(under, httptest.NewRequest(http.MethodGet, "/", nil))
		if unwrapped != under {
			t.Errorf("kind %d: Unwrap() = %T, want the underlying %T", k, unwrapped, under)
		}
		fw := fakeOf(under)
		for _, name := range got {
			if !slices.Contains(fw.calls, name) {
				t.Errorf("kind %d: %s did not reach the underlying writer (calls %v)", k, name, fw.calls)
			}
		}
		if fw.body.String() != "body" {
			t.Errorf("kind %d: body = %q, want %q", k, fw.body.String(), "body")
		}
	}
}

// fakeOf returns the fakeWriter inside a generated fake.
func fakeOf(w http.ResponseWriter) *fakeWriter {
	if f, ok := w.(*fakeWriter); ok {
		return f
	}
	type inner interface{ fake() *fakeWriter }
	return w.(inner).fake()
}

func TestWriterRecordsWhatWasSent(t *testing.T) {
	tests := []struct {
		name       string
		give       func(w http.ResponseWriter)
		wantStatus int
		wantSent   bool
	}{
		{"nothing", func(http.ResponseWriter) {}, 0, false},
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, http.StatusTeapot, true},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write(nil) }, http.StatusOK, true},
		{"WriteString", func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, http.StatusOK, true},
		{"ReadFrom", func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("x")) }, http.StatusOK, true},
		{"Flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, http.StatusOK, true},
		{"Hijack", func(w http.ResponseWriter) { _, _, _ = w.(http.Hijacker).Hijack() }, 0, true},
		{"1xx then 204", func(w http.ResponseWriter) { w.WriteHeader(http.StatusEarlyHints); w.WriteHeader(http.StatusNoContent) }, http.StatusNoContent, true},
		{"write then 500", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")); w.WriteHeader(500) }, http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &serveState{}
			s.rw.s = s
			s.r = httptest.NewRequest(http.MethodGet, "/", nil)
			s.rw.w = newFakeWriter(numWriterKinds - 1)
			tt.give(s.rw.wrap(kind(s.rw.w)))
			if s.rw.status != tt.wantStatus || s.rw.sent() != tt.wantSent {
				t.Errorf("status, sent = %d, %v, want %d, %v", s.rw.status, s.rw.sent(), tt.wantStatus, tt.wantSent)
			}
		})
	}
}

func TestWriterAllocatesNothing(t *testing.T) {
	s := &serveState{}
	s.rw.s = s
	s.rw.w = httptest.NewRecorder()
	k := kind(s.rw.w)
	var sink http.ResponseWriter
	if n := testing.AllocsPerRun(100, func() { sink = s.rw.wrap(k) }); n != 0 {
		t.Errorf("wrap allocs = %v, want 0", n)
	}
	_ = sink
}

func (w *fakeWriter) fake() *fakeWriter { return w }
