package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// browser starts a headless Chromium for the test, or fails (under CI=true)
// or skips when there is none.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found on PATH (CI=true: .ci/run must install it)")
		}
		t.Skip("chromium not found on PATH")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now, so failures are clear
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// toggle is a switch-like policy defined in this test module, not in
// bulwark: it reaches the page through bulwark.Snapshotter and
// bulwark.Controller alone.
type toggle struct {
	mu     sync.Mutex
	name   string
	on     bool
	reason string
	events bulwark.EventLog
}

func (s *toggle) Name() string { return s.name }

func (s *toggle) Snapshot() bulwark.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	state, health := "off", "ok"
	if s.on {
		state, health = "on", "warn"
	}
	return bulwark.Snapshot{Kind: "switch", State: state, Health: health, Source: "manual", Reason: s.reason, Events: s.events.Events()}
}

func (s *toggle) Actions() []bulwark.Action {
	return []bulwark.Action{{Name: "on", Label: "Turn on"}, {Name: "off", Label: "Turn off"}}
}

func (s *toggle) Control(_ context.Context, action string, _ map[string]string, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch action {
	case "on", "off":
		s.on = action == "on"
	default:
		return fmt.Errorf("unknown action %q: %w", action, bulwark.ErrInvalidControl)
	}
	s.reason = reason
	s.events.Add(bulwark.Event{Time: time.Now(), To: action, Source: "manual", Reason: reason})
	return nil
}

func (s *toggle) set(on bool) {
	s.mu.Lock()
	s.on = on
	s.mu.Unlock()
}

// stateSel selects the state badge of policy name.
func stateSel(name string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`section[data-policy=%q] [data-role="state"]`, name))
}

// waitText polls sel until its text is want.
func waitText(sel chromedp.CSS, want string) chromedp.Action[chromedp.Void] {
	return discard(chromedp.Poll[bool](fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e!==null&&e.textContent===%q;})()`, string(sel), want),
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return discard(chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
}

func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// text reads sel's text.
func text(ctx context.Context, t *testing.T, sel chromedp.CSS) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a boolean expression.
func eval(ctx context.Context, t *testing.T, expr string) bool {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func TestAdminBrowserFlipSwitch(t *testing.T) {
	reg := bulwark.NewRegistry()
	sw := &toggle{name: "recommendations"}
	reg.Register(sw)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("s3cret"), bulwarkhttp.WithAdminTitle("checkout")))
	defer srv.Close()
	ctx := browser(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/debug/bulwark"),
		chromedp.WaitVisible(stateSel("recommendations")),
	); err != nil {
		t.Fatal(err)
	}
	eval(ctx, t, `(window.__notReloaded = true)`)
	if state := text(ctx, t, stateSel("recommendations")); state != "off" {
		t.Fatalf("state in the DOM = %q, want off", state)
	}

	onForm := `section[data-policy="recommendations"] form[data-action="on"]`
	// A wrong token is refused on the page, and nothing changes.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), "wrong"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		chromedp.SendKeys(chromedp.CSS(onForm+` input[name="reason"]`), "browser test"),
		chromedp.Click(chromedp.CSS(onForm+` button[type="submit"]`)),
		waitJS(`document.getElementById("status").textContent.includes("401")`),
	); err != nil {
		t.Fatalf("wrong token: %v", err)
	}
	if status := text(ctx, t, `#status`); !strings.Contains(status, "token is wrong") {
		t.Errorf("status after a wrong token = %q, want it to say the token is wrong", status)
	}
	if sw.Snapshot().State != "off" {
		t.Fatal("a wrong token changed the switch")
	}

	// The right token flips it; the new state appears without a reload.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret"),
		chromedp.Click(chromedp.CSS(`#token-save`)),
		chromedp.Click(chromedp.CSS(onForm+` button[type="submit"]`)),
		waitText(stateSel("recommendations"), "on"),
	); err != nil {
		t.Fatalf("right token: %v", err)
	}
	if !eval(ctx, t, `window.__notReloaded === true`) {
		t.Error("the page reloaded; want the new state to appear in place")
	}
	if got := sw.Snapshot(); got.State != "on" || got.Reason != "browser test" {
		t.Errorf("switch after the flip = %s (%q), want on (browser test)", got.State, got.Reason)
	}
	if status := text(ctx, t, `#status`); !strings.Contains(status, "Applied") {
		t.Errorf("status = %q, want it to say the action was applied", status)
	}

	// A change made elsewhere (a trigger, another operator) shows up live.
	sw.set(false)
	if err := chromedp.Do(ctx, waitText(stateSel("recommendations"), "off")); err != nil {
		t.Fatalf("live refresh: %v", err)
	}
	cls, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`section[data-policy="recommendations"]`), "class"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cls.Value, "ok") {
		t.Errorf("row class = %q, want it coloured ok when off", cls.Value)
	}
}

func TestAdminBrowserReadOnly(t *testing.T) {
	reg := bulwark.NewRegistry()
	reg.Register(&toggle{name: "recommendations"})
	srv := httptest.NewServer(bulwarkhttp.Admin(reg))
	defer srv.Close()
	ctx := browser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL),
		chromedp.WaitVisible(chromedp.CSS(`#mutations-disabled`)),
	); err != nil {
		t.Fatal(err)
	}
	note := text(ctx, t, `#mutations-disabled`)
	hasToken := eval(ctx, t, `document.getElementById("token") !== null`)
	if !strings.Contains(note, "disabled") || hasToken {
		t.Errorf("read-only page: note %q, token field %v; want the note and no token field", note, hasToken)
	}
}
