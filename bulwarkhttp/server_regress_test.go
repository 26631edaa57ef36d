package bulwarkhttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/internal/policytest"
)

// A handler that honours its context and returns without writing, after
// our own deadline ended it, must not go out as an empty 200 counted as a
// success: the client gets the refusal for ErrTimeout and the policies see
// the timeout.
func TestMiddlewareTimedOutHandlerIsAnswered503(t *testing.T) {
	bulwarktestSynctest(t, func(t *testing.T) {
		rec := &policytest.Recorder{}
		var res bulwarkhttp.Result
		h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}), bulwark.Chain(rec, bulwark.Timeout(time.Second)),
			bulwarkhttp.WithObserver(func(_ *http.Request, r bulwarkhttp.Result) { res = r }))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503", w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("Content-Type = %q, want application/problem+json", ct)
		}
		if !strings.Contains(w.Body.String(), `"status":503`) {
			t.Errorf("body = %q, want a problem with status 503", w.Body)
		}
		if err := rec.Last(); !errors.Is(err, bulwark.ErrTimeout) {
			t.Errorf("the policies saw %v, want ErrTimeout (a failure breakers count)", err)
		}
		if res.Status != 503 || res.Outcome != "failure" || !res.HandlerRan || !errors.Is(res.Err, bulwark.ErrTimeout) {
			t.Errorf("Result = %+v, want 503 failure, handler ran, ErrTimeout", res)
		}
	})
}

// A handler that wrote before our deadline keeps its answer.
func TestMiddlewareTimedOutHandlerThatWroteKeepsItsAnswer(t *testing.T) {
	for _, write := range []struct {
		name string
		fn   func(http.ResponseWriter)
	}{
		{"WriteHeader", func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }},
		{"Write", func(w http.ResponseWriter) { _, _ = w.Write([]byte("partial")) }},
		{"ReadFrom", func(w http.ResponseWriter) { _, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("partial")) }},
	} {
		t.Run(write.name, func(t *testing.T) {
			bulwarktestSynctest(t, func(t *testing.T) {
				h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					write.fn(w)
					<-r.Context().Done()
				}), bulwark.Timeout(time.Second))
				w := &readerFromRecorder{httptest.NewRecorder()}
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
				if w.Code == http.StatusServiceUnavailable {
					t.Errorf("status = 503 after the handler had sent its answer")
				}
			})
		})
	}
}

type readerFromRecorder struct{ *httptest.ResponseRecorder }

func (w *readerFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(w.ResponseRecorder, r)
}

// A client that went away while the handler waited is still 499, with
// nothing written, even under our own timeout.
func TestMiddlewareTimedOutHandlerClientGone(t *testing.T) {
	bulwarktestSynctest(t, func(t *testing.T) {
		var res bulwarkhttp.Result
		h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}), bulwark.Timeout(time.Hour),
			bulwarkhttp.WithObserver(func(_ *http.Request, r bulwarkhttp.Result) { res = r }))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		if w.Flushed || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
			t.Errorf("something was written for a client that went away: %d %q", w.Code, w.Body)
		}
		if res.Status != bulwarkhttp.StatusClientClosedRequest || res.Outcome != "ignored" {
			t.Errorf("Result = %+v, want 499 ignored", res)
		}
	})
}

// Nested adapters: the tier an outer layer decided may only be lowered by
// the header, never raised (critical, critical-plus, garbage, empty).
func TestMiddlewareNestedHeaderMayOnlyLower(t *testing.T) {
	trustAll := bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true })
	tests := []struct {
		name  string
		outer bulwark.Priority
		give  []string
		inner []bulwarkhttp.Option
		want  bulwark.Priority
	}{
		{"critical", bulwark.Sheddable, []string{"critical"}, nil, bulwark.Sheddable},
		{"critical-plus", bulwark.Sheddable, []string{"critical-plus"}, nil, bulwark.Sheddable},
		{"critical-plus, trusted", bulwark.SheddablePlus, []string{"critical-plus"}, []bulwarkhttp.Option{trustAll}, bulwark.SheddablePlus},
		{"garbage", bulwark.Sheddable, []string{"urgent!!"}, nil, bulwark.Sheddable},
		{"empty", bulwark.SheddablePlus, []string{""}, nil, bulwark.SheddablePlus},
		{"lower", bulwark.SheddablePlus, []string{"sheddable"}, nil, bulwark.Sheddable},
		{"outer set critical, trusted critical-plus", bulwark.Critical, []string{"critical-plus"}, []bulwarkhttp.Option{trustAll}, bulwark.Critical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var policySaw, handlerSaw bulwark.Priority = 99, 99
			p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
				policySaw = bulwark.PriorityFrom(ctx)
				return fn(ctx)
			})
			inner := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerSaw = bulwark.PriorityFrom(r.Context())
			}), p, tt.inner...)
			outer := bulwarkhttp.Middleware(policytest.PassThrough,
				bulwarkhttp.WithPriorityFunc(func(*http.Request) bulwark.Priority { return tt.outer }))(inner)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header["Bulwark-Priority"] = tt.give
			outer.ServeHTTP(httptest.NewRecorder(), req)
			if policySaw != tt.want || handlerSaw != tt.want {
				t.Errorf("inner policy saw %v, handler saw %v, want %v", policySaw, handlerSaw, tt.want)
			}
		})
	}
}

// A key set upstream (authentication) is kept; a key alone sets no tier,
// so the header still decides it.
func TestMiddlewareKeepsUpstreamKey(t *testing.T) {
	var key string
	var prio bulwark.Priority
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, prio = bulwark.KeyFrom(r.Context()), bulwark.PriorityFrom(r.Context())
	}), policytest.PassThrough, bulwarkhttp.WithTrustPriority(func(*http.Request) bool { return true }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(bulwark.WithKey(req.Context(), "tenant-a"))
	req.Header.Set("Bulwark-Priority", "critical-plus")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if key != "tenant-a" || prio != bulwark.CriticalPlus {
		t.Errorf("handler saw key %q tier %v, want tenant-a critical-plus", key, prio)
	}
}

// A handler that wrote its body and then calls http.Error: the wire has
// the implicit 200, so Result and the policies say 200 and success, and
// the superfluous WriteHeader is logged at the handler, not at our
// wrapper.
func TestMiddlewareSuperfluousWriteHeader(t *testing.T) {
	rec := &policytest.Recorder{}
	results := make(chan bulwarkhttp.Result, 1)
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done")
		http.Error(w, "oops", http.StatusInternalServerError)
	}), rec, bulwarkhttp.WithObserver(func(_ *http.Request, r bulwarkhttp.Result) { results <- r }))
	var logs bytes.Buffer
	lw := &lockedWriter{w: &logs, mu: make(chan struct{}, 1)}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(lw, "", 0)
	srv.Start()
	defer srv.Close()
	resp, body := get(t, srv.Client(), srv.URL, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("wire status = %d, want 200", resp.StatusCode)
	}
	res := <-results
	if res.Status != 200 || res.Outcome != "success" {
		t.Errorf("Result = %+v, want 200 success (what was sent)", res)
	}
	if err := rec.Last(); err != nil {
		t.Errorf("the policies saw %v, want success", err)
	}
	srv.Close()
	got := lw.String()
	if !strings.Contains(got, "superfluous response.WriteHeader call from github.com/bulwark-go/bulwark/bulwarkhttp_test.TestMiddlewareSuperfluousWriteHeader") {
		t.Errorf("log = %q, want the superfluous WriteHeader logged at the test's handler", got)
	}
	_ = body
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu chan struct{}
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(b)
}

func (l *lockedWriter) String() string {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.String()
}

func TestMiddlewareDrillHeader(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"none", nil, ""},
		{"token", []string{"game-day-3"}, "game-day-3"},
		{"empty", []string{""}, ""},
		{"space", []string{"game day"}, ""},
		{"control", []string{"x\x01"}, ""},
		{"non-ASCII", []string{"jour-j-é"}, ""},
		{"too long", []string{strings.Repeat("a", 65)}, ""},
		{"longest", []string{strings.Repeat("a", 64)}, strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var policySaw, handlerSaw string = "unset", "unset"
			p := bulwark.PolicyFunc(func(ctx context.Context, fn func(context.Context) error) error {
				policySaw = bulwark.DrillFrom(ctx)
				return fn(ctx)
			})
			h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerSaw = bulwark.DrillFrom(r.Context())
			}), p)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header["Bulwark-Drill"] = tt.give
			h.ServeHTTP(httptest.NewRecorder(), req)
			if policySaw != tt.want || handlerSaw != tt.want {
				t.Errorf("policy saw %q, handler saw %q, want %q", policySaw, handlerSaw, tt.want)
			}
		})
	}
}

// degradedRefusal is a degradation switch's refusal.
type degradedRefusal struct {
	name string
	hint time.Duration
}

func (e *degradedRefusal) Error() string             { return "degrade: " + e.name + " is off" }
func (e *degradedRefusal) Unwrap() error             { return bulwark.ErrUnavailable }
func (e *degradedRefusal) Degraded() string          { return e.name }
func (e *degradedRefusal) RetryAfter() time.Duration { return e.hint }

func TestMiddlewareDegradedRefusal(t *testing.T) {
	tests := []struct {
		name      string
		give      error
		wantHdr   string
		wantRetry string
	}{
		{"with a hint", &degradedRefusal{name: "recommendations", hint: 1500 * time.Millisecond}, "recommendations", "2"},
		{"without a hint", &degradedRefusal{name: "search"}, "search", ""},
		{"no name", &degradedRefusal{}, "", ""},
		{"not degraded", &refusal{class: bulwark.ErrUnavailable}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bulwarkhttp.Handler(okHandler, policytest.Refuse(tt.give))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != 503 {
				t.Errorf("status = %d, want 503", w.Code)
			}
			if got := w.Header().Get("Bulwark-Degraded"); got != tt.wantHdr {
				t.Errorf("Bulwark-Degraded = %q, want %q", got, tt.wantHdr)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
}

func TestMarkDegraded(t *testing.T) {
	h := bulwarkhttp.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bulwarkhttp.MarkDegraded(w, "reviews")
		bulwarkhttp.MarkDegraded(w, "reviews")
		bulwarkhttp.MarkDegraded(w, "images")
		bulwarkhttp.MarkDegraded(w, "bad name\r\nX-Injected: 1")
		bulwarkhttp.MarkDegraded(w, "")
		_, _ = io.WriteString(w, "partial page")
	}), policytest.PassThrough)
	srv, c := serve(t, h)
	resp, _ := get(t, c, srv.URL, nil)
	if got := resp.Header.Values("Bulwark-Degraded"); strings.Join(got, ",") != "reviews,images" {
		t.Errorf("Bulwark-Degraded = %q, want [reviews images]", got)
	}
	if resp.Header.Get("X-Injected") != "" {
		t.Error("a name with CRLF injected a header")
	}
}
