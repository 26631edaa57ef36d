package bulwarkhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// lamp is a policy type defined here, not in this module's policy
// packages: it shows up on the admin page through the root interfaces
// alone.
type lamp struct {
	mu     sync.Mutex
	name   string
	on     bool
	source string
	reason string
	events bulwark.EventLog
}

func (l *lamp) Name() string { return l.name }

func (l *lamp) Snapshot() bulwark.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	state, health := "off", "ok"
	if l.on {
		state, health = "on", "warn"
	}
	return bulwark.Snapshot{
		Name: l.name, Kind: "lamp", State: state, Health: health,
		Figures: []bulwark.Figure{{Name: "watts", Value: 60, Unit: "W"}},
		Source:  l.source, Reason: l.reason, Events: l.events.Events(),
	}
}

func (l *lamp) Actions() []bulwark.Action {
	return []bulwark.Action{
		{Name: "on", Label: "Turn on"},
		{Name: "off", Label: "Turn off"},
		{Name: "dim", Label: "Dim", Params: []bulwark.Param{{Name: "percent", Kind: bulwark.ParamInt, Required: true}}},
	}
}

func (l *lamp) Control(_ context.Context, action string, args map[string]string, reason string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := map[bool]string{true: "on", false: "off"}[l.on]
	switch action {
	case "on":
		l.on = true
	case "off":
		l.on = false
	case "dim":
		if _, err := strconv.Atoi(args["percent"]); err != nil {
			return fmt.Errorf("lamp: percent %q: %w", args["percent"], bulwark.ErrInvalidControl)
		}
	default:
		return fmt.Errorf("lamp: unknown action %q: %w", action, bulwark.ErrInvalidControl)
	}
	l.source, l.reason = "manual", reason
	l.events.Add(bulwark.Event{Time: time.Now(), From: from, To: map[bool]string{true: "on", false: "off"}[l.on], Source: "manual", Reason: reason})
	return nil
}

// gauge has a snapshot and no controls.
type gauge struct{}

func (gauge) Snapshot() bulwark.Snapshot { return bulwark.Snapshot{Kind: "gauge", State: "ok"} }

type adminState struct {
	Mutations bool               `json:"mutations"`
	Policies  []bulwark.Snapshot `json:"policies"`
}

func newAdmin(t *testing.T, opts ...bulwarkhttp.AdminOption) (*httptest.Server, *lamp) {
	t.Helper()
	reg := bulwark.NewRegistry()
	l := &lamp{name: "porch"}
	reg.Register(l)
	reg.RegisterAs("meter", gauge{})
	reg.RegisterAs("not-shown", 42)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, opts...))
	t.Cleanup(srv.Close)
	return srv, l
}

func getState(t *testing.T, url string) adminState {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET json = %d %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	var s adminState
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func post(t *testing.T, url, token, contentType, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAdminJSON(t *testing.T) {
	srv, _ := newAdmin(t, bulwarkhttp.WithAdminToken("s3cret"))
	s := getState(t, srv.URL+"/debug/bulwark")
	if !s.Mutations {
		t.Error("mutations = false with a token configured, want true")
	}
	if len(s.Policies) != 2 {
		t.Fatalf("len(policies) = %d, want 2 (snapshotters only): %+v", len(s.Policies), s.Policies)
	}
	p := s.Policies[0]
	if p.Name != "porch" || p.Kind != "lamp" || p.State != "off" || len(p.Figures) != 1 || p.Figures[0].Unit != "W" {
		t.Errorf("policies[0] = %+v, want porch/lamp/off with one figure in W", p)
	}
	if len(p.Actions) != 3 || p.Actions[2].Params[0].Kind != bulwark.ParamInt {
		t.Errorf("policies[0].actions = %+v, want the lamp's three declared actions", p.Actions)
	}
	if m := s.Policies[1]; m.Name != "meter" || len(m.Actions) != 0 {
		t.Errorf("policies[1] = %+v, want meter named from the registry, no actions", m)
	}
	// ?format=json works without an Accept header; HEAD sends no body.
	resp, err := http.Get(srv.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("?format=json Content-Type = %q, want application/json", ct)
	}
	resp, err = http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("HEAD = %d with %d body bytes, want 200 and none", resp.StatusCode, len(b))
	}
}

func TestAdminPage(t *testing.T) {
	for _, tt := range []struct {
		name       string
		opts       []bulwarkhttp.AdminOption
		want       string
		wantAbsent string
	}{
		{"read-only", nil, `id="mutations-disabled"`, `id="token"`},
		{"with token", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("t")}, `id="token"`, `id="mutations-disabled"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newAdmin(t, tt.opts...)
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(body)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("GET page = %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(page, tt.want) || strings.Contains(page, tt.wantAbsent) {
				t.Errorf("page has %q: %v, %q: %v; want the first only", tt.want, strings.Contains(page, tt.want), tt.wantAbsent, strings.Contains(page, tt.wantAbsent))
			}
			// No external resource: the page must work air-gapped.
			for _, ext := range []string{"http://", "https://", "src=\"//"} {
				if strings.Contains(page, ext) {
					t.Errorf("page references %q: it must load nothing from elsewhere", ext)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(page, `nonce="`) {
				t.Errorf("CSP = %q; want a script nonce the page's script carries", csp)
			}
			if !strings.Contains(page, `"name":"porch"`) {
				t.Error("page does not embed the initial state")
			}
		})
	}
}

func TestAdminAuth(t *testing.T) {
	body := `{"policy":"porch","action":"on","reason":"incident 42"}`
	for _, tt := range []struct {
		name       string
		opts       []bulwarkhttp.AdminOption
		auth       string
		ctype      string
		body       string
		wantStatus int
		wantOn     bool
	}{
		{"no token configured", nil, "Bearer anything", "application/json", body, 403, false},
		{"no token configured, garbage body", nil, "", "text/plain", "x", 403, false},
		{"missing", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "", "application/json", body, 401, false},
		{"wrong", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3creT", "application/json", body, 401, false},
		{"prefix", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cre", "application/json", body, 401, false},
		{"longer", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret2", "application/json", body, 401, false},
		{"basic scheme", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Basic s3cret", "application/json", body, 401, false},
		{"wrong token before routing", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer no", "text/plain", "{", 401, false},
		{"right", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", body, 200, true},
		{"right, scheme any case", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "bearer s3cret", "application/json; charset=utf-8", body, 200, true},
		{"form post", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/x-www-form-urlencoded", "policy=porch&action=on", 415, false},
		{"malformed", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", "{", 400, false},
		{"unknown field", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"porch","action":"on","reason":"r","x":1}`, 400, false},
		{"no reason", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"porch","action":"on","reason":"  "}`, 400, false},
		{"unknown policy", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"nope","action":"on","reason":"r"}`, 404, false},
		{"no controls", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"meter","action":"on","reason":"r"}`, 409, false},
		{"unknown action", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"porch","action":"explode","reason":"r"}`, 400, false},
		{"bad argument", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"porch","action":"dim","args":{"percent":"lots"},"reason":"r"}`, 400, false},
		{"huge body", []bulwarkhttp.AdminOption{bulwarkhttp.WithAdminToken("s3cret")}, "Bearer s3cret", "application/json", `{"policy":"porch","action":"on","reason":"` + strings.Repeat("r", 70<<10) + `"}`, 413, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, l := newAdmin(t, tt.opts...)
			resp := post(t, srv.URL+"/debug/bulwark/anything", tt.auth, tt.ctype, tt.body)
			if resp.StatusCode != tt.wantStatus {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("POST = %d (%s), want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
			}
			if tt.wantStatus != 200 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", resp.Header.Get("Content-Type"))
			}
			if got := l.Snapshot().State == "on"; got != tt.wantOn {
				t.Errorf("lamp on = %v after POST, want %v", got, tt.wantOn)
			}
		})
	}
}

func TestAdminMutation(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	srv, _ := newAdmin(t, bulwarkhttp.WithAdminToken("s3cret"), bulwarkhttp.WithAdminLogger(logger))
	resp := post(t, srv.URL, "Bearer s3cret", "application/json", `{"policy":"porch","action":"on","reason":"incident 42: dark porch"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("POST = %d, want 200", resp.StatusCode)
	}
	var snap bulwark.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	if snap.State != "on" || snap.Name != "porch" {
		t.Errorf("POST answered %+v, want porch's new state on", snap)
	}
	p := getState(t, srv.URL).Policies[0]
	if p.State != "on" || p.Health != "warn" || p.Source != "manual" || p.Reason != "incident 42: dark porch" {
		t.Errorf("next snapshot = %+v, want on / warn / manual / the reason", p)
	}
	if len(p.Events) != 1 || p.Events[0].From != "off" || p.Events[0].To != "on" {
		t.Errorf("events = %+v, want one off → on", p.Events)
	}
	var rec map[string]any
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", logs.String(), err)
	}
	if rec["policy"] != "porch" || rec["action"] != "on" || rec["reason"] != "incident 42: dark porch" || !strings.HasPrefix(fmt.Sprint(rec["remote"]), "127.0.0.1:") {
		t.Errorf("log = %v, want policy, action, reason and remote address", rec)
	}
}

func TestAdminMethodsAndReadToken(t *testing.T) {
	srv, _ := newAdmin(t, bulwarkhttp.WithAdminToken("w"), bulwarkhttp.WithAdminReadToken("r"))
	for _, tt := range []struct {
		method, auth string
		want         int
	}{
		{"GET", "", 401},
		{"GET", "Bearer x", 401},
		{"GET", "Bearer r", 200},
		{"GET", "Bearer w", 200},
		{"HEAD", "", 401},
		{"DELETE", "Bearer w", 405},
		{"PUT", "", 405},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s with %q = %d, want %d", tt.method, tt.auth, resp.StatusCode, tt.want)
		}
		if tt.want == 405 && resp.Header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s Allow = %q, want GET, HEAD, POST", tt.method, resp.Header.Get("Allow"))
		}
	}
}

func TestAdminNilRegistryPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Admin(nil) did not panic")
		}
	}()
	bulwarkhttp.Admin(nil)
}
