package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// form is a policy with one action of declared params, recording the last
// control it received.
type form struct {
	name    string
	params  []bulwark.Param
	label   string
	snap    bulwark.Snapshot
	mu      sync.Mutex
	args    map[string]string
	reason  string
	actions int
}

func (f *form) Name() string { return f.name }
func (f *form) Snapshot() bulwark.Snapshot {
	s := f.snap
	if s.State == "" {
		s.State = "ok"
	}
	return s
}
func (f *form) Actions() []bulwark.Action {
	return []bulwark.Action{{Name: "set", Label: f.label, Params: f.params}}
}
func (f *form) Control(_ context.Context, _ string, args map[string]string, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.args, f.reason = args, reason
	f.actions++
	return nil
}
func (f *form) last() (map[string]string, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.args, f.reason, f.actions
}

// load opens url and waits for sel; an uncaught exception in the page's
// script, at any time in the test, fails it.
func load(ctx context.Context, t *testing.T, url string, sel chromedp.CSS) {
	t.Helper()
	var mu sync.Mutex
	var thrown []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok {
			mu.Lock()
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			thrown = append(thrown, fmt.Sprintf("%s (line %d)", msg, d.LineNumber+1))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range thrown {
			t.Errorf("the page's script threw: %s", e)
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(sel)); err != nil {
		t.Fatal(err)
	}
}

// Names that are also properties of every JavaScript object, names whose
// ids would collide, hostile markup in every string the page shows, a
// parameter named like the reason field, and a figure that is not a
// number: every row renders, as text, with working labels and forms.
func TestAdminBrowserHostileNames(t *testing.T) {
	evil := `</script><script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">`
	reg := bulwark.NewRegistry()
	reg.RegisterAs("constructor", &toggle{name: "constructor"})
	reg.RegisterAs("__proto__", &toggle{name: "__proto__"})
	reg.RegisterAs("hasOwnProperty", &toggle{name: "hasOwnProperty"})
	a, b := &form{name: "a.b", label: "Set a.b", params: []bulwark.Param{{Name: "level", Kind: bulwark.ParamInt}}},
		&form{name: "a_b", label: "Set a_b", params: []bulwark.Param{{Name: "level", Kind: bulwark.ParamInt}}}
	reg.Register(a, b)
	r := &form{name: "reasoned", label: "Go", params: []bulwark.Param{{Name: "reason", Label: "Param called reason", Kind: bulwark.ParamString}}}
	reg.Register(r)
	reg.RegisterAs(evil, &form{name: evil, label: evil,
		params: []bulwark.Param{{Name: evil, Label: evil, Kind: bulwark.ParamChoice, Choices: []string{evil}, Help: evil, Default: evil}},
		snap: bulwark.Snapshot{Kind: evil, State: evil, Reason: evil, Source: evil,
			Figures: []bulwark.Figure{{Name: evil, Value: 1, Unit: evil}, {Name: "nan", Value: math.NaN()}},
			Events:  []bulwark.Event{{To: evil, From: evil, Reason: evil}}}})
	sw := &toggle{name: "recommendations"}
	reg.Register(sw)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("s3cret"), bulwarkhttp.WithAdminTitle(evil)))
	defer srv.Close()
	ctx := browser(t)
	load(ctx, t, srv.URL, stateSel("recommendations"))
	// The poll re-renders: give it two rounds, then look.
	time.Sleep(3500 * time.Millisecond)

	for _, name := range []string{"constructor", "__proto__", "hasOwnProperty", "recommendations", "a.b", "a_b"} {
		if !eval(ctx, t, fmt.Sprintf(`document.querySelectorAll('section[data-policy=%q]').length === 1`, name)) {
			t.Errorf("no single row for policy %q", name)
		}
	}
	if st := text(ctx, t, stateSel("recommendations")); st != "off" {
		t.Errorf("recommendations state = %q, want off", st)
	}
	if !eval(ctx, t, `getComputedStyle(document.querySelector("[data-role=state]")).fontWeight === "700"`) {
		t.Error("the page's stylesheet did not apply (CSP nonce)")
	}
	if eval(ctx, t, `window.__xss !== undefined || document.querySelector("img") !== null`) {
		t.Error("hostile markup ran or became elements")
	}
	if !eval(ctx, t, fmt.Sprintf(`Array.from(document.querySelectorAll("section.policy")).some(function(s){return s.getAttribute("data-policy")===%q && s.querySelector("[data-role=state]").textContent===%q;})`, evil, evil)) {
		t.Error("the hostile policy's name and state are not shown as text")
	}
	if !eval(ctx, t, `Array.from(document.querySelectorAll("dd")).some(function(d){return d.textContent==="—";})`) {
		t.Error("a NaN figure is not shown as —")
	}
	// Every id is unique and every label names a field of its own form.
	if !eval(ctx, t, `(function(){var ids=Array.from(document.querySelectorAll("[id]")).map(function(e){return e.id;});return new Set(ids).size===ids.length;})()`) {
		t.Error("duplicate element ids on the page")
	}
	if !eval(ctx, t, `Array.from(document.querySelectorAll("form.action label")).every(function(l){var f=document.getElementById(l.htmlFor);return f!==null&&f.form===l.closest("form");})`) {
		t.Error("a label points at no field, or at another form's field")
	}

	// Acting on a.b reaches a.b only, with a.b's own field.
	sel := func(policy, rest string) chromedp.CSS {
		return chromedp.CSS(fmt.Sprintf(`section[data-policy=%q] form[data-action="set"] %s`, policy, rest))
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		chromedp.SendKeys(sel("a.b", `input[name="level"]`), "3"),
		chromedp.SendKeys(sel("a.b", `input[placeholder^="why"]`), "ab test"),
		chromedp.Click(sel("a.b", `button[type="submit"]`)),
		waitJS(`document.getElementById("status").textContent.includes("Applied")`),
	); err != nil {
		t.Fatal(err)
	}
	if args, reason, n := a.last(); n != 1 || args["level"] != "3" || reason != "ab test" {
		t.Errorf("a.b got %v %q (%d actions), want level 3, ab test", args, reason, n)
	}
	if _, _, n := b.last(); n != 0 {
		t.Errorf("a_b got %d actions, want 0", n)
	}
	// A parameter named "reason" and the reason field stay apart.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(sel("reasoned", `input[name="reason"]:not([placeholder])`), "the param"),
		chromedp.SendKeys(sel("reasoned", `input[placeholder^="why"]`), "the why"),
		chromedp.Click(sel("reasoned", `button[type="submit"]`)),
		waitJS(`document.getElementById("status").textContent.includes("to reasoned")`),
	); err != nil {
		t.Fatal(err)
	}
	if args, reason, n := r.last(); n != 1 || args["reason"] != "the param" || reason != "the why" {
		t.Errorf("reasoned got %v %q (%d actions), want reason=the param, the why", args, reason, n)
	}
}

// slow is a policy whose Snapshot blocks while its gate is shut, counting
// the calls in flight.
type slow struct {
	mu       sync.Mutex
	shut     chan struct{} // nil: open
	inFlight atomic.Int32
	most     atomic.Int32
}

func (s *slow) Snapshot() bulwark.Snapshot {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	s.mu.Lock()
	ch := s.shut
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return bulwark.Snapshot{Kind: "slow", State: "ok"}
}

func (s *slow) close() {
	s.mu.Lock()
	s.shut = make(chan struct{})
	s.mu.Unlock()
}

func (s *slow) open() {
	s.mu.Lock()
	if s.shut != nil {
		close(s.shut)
		s.shut = nil
	}
	s.mu.Unlock()
}

// A server that answers slowly gets one poll at a time from a tab, not a
// new one every interval on top of those still waiting.
func TestAdminBrowserSlowServer(t *testing.T) {
	reg := bulwark.NewRegistry()
	s := &slow{}
	reg.RegisterAs("slow", s)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg))
	defer srv.Close()
	defer s.open()
	ctx := browser(t)
	load(ctx, t, srv.URL, stateSel("slow"))
	s.most.Store(0)
	s.close()
	time.Sleep(6 * time.Second) // four poll intervals
	if m := s.most.Load(); m != 1 {
		t.Errorf("at most %d polls in flight at once, want 1", m)
	}
	s.open()
	if err := chromedp.Do(ctx, waitJS(`document.getElementById("updated").textContent.startsWith("updated")`)); err != nil {
		t.Errorf("the page did not recover after the server did: %v", err)
	}
}

// With a read token, the page's polls carry the token the operator gave
// (here a proxy adds it to the page's first load only).
func TestAdminBrowserReadToken(t *testing.T) {
	reg := bulwark.NewRegistry()
	reg.Register(&toggle{name: "recommendations"})
	admin := bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("w"), bulwarkhttp.WithAdminReadToken("r"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && strings.Contains(r.Header.Get("Accept"), "text/html") {
			r.Header.Set("Authorization", "Bearer r")
		}
		admin.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := browser(t)
	load(ctx, t, srv.URL, stateSel("recommendations"))
	if err := chromedp.Do(ctx,
		waitJS(`document.getElementById("updated").textContent.includes("401")`),
		chromedp.SendKeys(chromedp.CSS(`#token`), "w"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		waitJS(`document.getElementById("updated").textContent.startsWith("updated")`),
	); err != nil {
		t.Fatalf("polls with the operator's token: %v", err)
	}
}

// A poll that was already on its way when the operator acted, and answers
// after the action's own refresh, must not put the old state back.
func TestAdminBrowserStalePoll(t *testing.T) {
	reg := bulwark.NewRegistry()
	sw := &toggle{name: "recommendations"}
	reg.Register(sw)
	admin := bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("s3cret"))
	var mu sync.Mutex
	var hold, held chan struct{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && strings.Contains(r.Header.Get("Accept"), "application/json") {
			mu.Lock()
			h, hd := hold, held
			hold = nil
			mu.Unlock()
			if h != nil {
				rec := httptest.NewRecorder()
				admin.ServeHTTP(rec, r) // the state now
				close(hd)
				<-h // answered later
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			}
		}
		admin.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := browser(t)
	load(ctx, t, srv.URL, stateSel("recommendations"))
	h, hd := make(chan struct{}), make(chan struct{})
	mu.Lock()
	hold, held = h, hd
	mu.Unlock()
	select {
	case <-hd:
	case <-time.After(15 * time.Second):
		t.Fatal("no poll arrived")
	}
	released := false
	defer func() {
		if !released {
			close(h)
		}
	}()
	onForm := `section[data-policy="recommendations"] form[data-action="on"]`
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		chromedp.SendKeys(chromedp.CSS(onForm+` input[name="reason"]`), "stale test"),
		chromedp.Click(chromedp.CSS(onForm+` button[type="submit"]`)),
		waitText(stateSel("recommendations"), "on"),
	); err != nil {
		t.Fatal(err)
	}
	close(h)
	released = true
	time.Sleep(300 * time.Millisecond)
	if st := text(ctx, t, stateSel("recommendations")); st != "on" {
		t.Errorf("state after the stale poll answered = %q, want on", st)
	}
}

// A read-only page (no token configured) offers no action forms: every
// one could only be refused.
func TestAdminBrowserReadOnlyNoForms(t *testing.T) {
	reg := bulwark.NewRegistry()
	reg.Register(&toggle{name: "recommendations"})
	srv := httptest.NewServer(bulwarkhttp.Admin(reg))
	defer srv.Close()
	ctx := browser(t)
	load(ctx, t, srv.URL, stateSel("recommendations"))
	if err := chromedp.Do(ctx, waitJS(`document.getElementById("updated").textContent.startsWith("updated")`)); err != nil {
		t.Fatalf("no poll rendered: %v", err)
	}
	if n := eval(ctx, t, `document.querySelectorAll("form.action").length === 0`); !n {
		t.Error("the read-only page offers action forms")
	}
}
