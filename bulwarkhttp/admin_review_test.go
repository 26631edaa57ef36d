package bulwarkhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
)

// quiet keeps the tests' admin handlers from logging.
var quiet = bulwarkhttp.WithAdminLogger(slog.New(slog.DiscardHandler))

// fixed is a snapshotter with a given snapshot.
type fixed struct{ snap bulwark.Snapshot }

func (f fixed) Snapshot() bulwark.Snapshot { return f.snap }

// panicky panics in Snapshot.
type panicky struct{}

func (panicky) Snapshot() bulwark.Snapshot { panic("snapshot exploded") }

// panickyActions snapshots fine but panics in Actions.
type panickyActions struct{ fixed }

func (panickyActions) Actions() []bulwark.Action { panic("actions exploded") }
func (panickyActions) Control(context.Context, string, map[string]string, string) error {
	return nil
}

func getJSON(t *testing.T, url string) (int, adminState) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s adminState
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, s
}

// One policy with a figure that is not a number (0 / 0) must not take
// the whole page down.
func TestAdminNonFiniteFigure(t *testing.T) {
	reg := bulwark.NewRegistry()
	reg.RegisterAs("ratio", fixed{bulwark.Snapshot{Kind: "x", State: "ok", Figures: []bulwark.Figure{{Name: "ratio", Value: math.NaN()}, {Name: "inf", Value: math.Inf(1)}}}})
	l := &lamp{name: "porch"}
	reg.Register(l)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("t"), quiet))
	defer srv.Close()
	status, s := getJSON(t, srv.URL)
	if status != 200 || len(s.Policies) != 2 {
		t.Fatalf("GET json = %d with %d policies, want 200 with 2", status, len(s.Policies))
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET page = %d, want 200", resp.StatusCode)
	}
	// A mutation that succeeded must not be answered 500 because the
	// answer could not be encoded (the operator would apply it again).
	reg2 := bulwark.NewRegistry()
	reg2.Register(&nanLamp{lamp: lamp{name: "porch"}})
	srv2 := httptest.NewServer(bulwarkhttp.Admin(reg2, bulwarkhttp.WithAdminToken("t"), quiet))
	defer srv2.Close()
	if r := post(t, srv2.URL, "Bearer t", "application/json", `{"policy":"porch","action":"on","reason":"r"}`); r.StatusCode != 200 {
		t.Errorf("POST = %d, want 200", r.StatusCode)
	}
}

type nanLamp struct{ lamp }

func (l *nanLamp) Snapshot() bulwark.Snapshot {
	s := l.lamp.Snapshot()
	s.Figures = append(s.Figures, bulwark.Figure{Name: "nan", Value: math.NaN()})
	return s
}

// A value whose Snapshot (or Actions) panics shows as a failed row; every
// other policy is still on the page.
func TestAdminSnapshotPanics(t *testing.T) {
	reg := bulwark.NewRegistry()
	reg.RegisterAs("bad", panicky{})
	reg.RegisterAs("bad-actions", panickyActions{fixed{bulwark.Snapshot{Kind: "x", State: "ok"}}})
	reg.Register(&lamp{name: "porch"})
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("t"), quiet))
	defer srv.Close()
	status, s := getJSON(t, srv.URL)
	if status != 200 || len(s.Policies) != 3 {
		t.Fatalf("GET json = %d with %d policies, want 200 with 3", status, len(s.Policies))
	}
	for i, name := range []string{"bad", "bad-actions"} {
		p := s.Policies[i]
		if p.Name != name || p.Health != "fail" || !strings.Contains(p.Reason, "exploded") {
			t.Errorf("policies[%d] = %+v, want %s shown failed with the panic as its reason", i, p, name)
		}
	}
	if p := s.Policies[2]; p.Name != "porch" || p.State != "off" {
		t.Errorf("policies[2] = %+v, want porch off", p)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET page = %d, want 200", resp.StatusCode)
	}
}

// The page names each row by the name it is registered under, and its
// actions are that value's: a value registered under another name (or a
// snapshot naming another policy) must not get another policy's actions,
// nor post to a name the registry does not know.
func TestAdminRegisteredNames(t *testing.T) {
	reg := bulwark.NewRegistry()
	l := &lamp{name: "porch"}
	reg.RegisterAs("front-door", l)
	reg.RegisterAs("impostor", fixed{bulwark.Snapshot{Name: "front-door", Kind: "x", State: "ok"}})
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("t"), quiet))
	defer srv.Close()
	_, s := getJSON(t, srv.URL)
	if len(s.Policies) != 2 || s.Policies[0].Name != "front-door" || s.Policies[1].Name != "impostor" {
		t.Fatalf("policies = %+v, want front-door and impostor", s.Policies)
	}
	if len(s.Policies[0].Actions) != 3 || len(s.Policies[1].Actions) != 0 {
		t.Errorf("actions = %d and %d, want the lamp's 3 on front-door and none on impostor", len(s.Policies[0].Actions), len(s.Policies[1].Actions))
	}
	// The page posts the row's name: it must reach the lamp.
	resp := post(t, srv.URL, "Bearer t", "application/json", `{"policy":"front-door","action":"on","reason":"r"}`)
	if resp.StatusCode != 200 || l.Snapshot().State != "on" {
		t.Fatalf("POST front-door = %d, lamp %s; want 200 and on", resp.StatusCode, l.Snapshot().State)
	}
	var snap bulwark.Snapshot
	_ = json.NewDecoder(resp.Body).Decode(&snap)
	if snap.Name != "front-door" {
		t.Errorf("POST answered a snapshot named %q, want front-door", snap.Name)
	}
}

func TestAdminAcceptNegotiation(t *testing.T) {
	srv, _ := newAdmin(t)
	for _, tt := range []struct {
		accept   string
		wantJSON bool
	}{
		{"application/json", true},
		{"application/problem+json", true},
		{"application/json, text/plain, */*", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"*/*", false},
		{"", false},
		{"application/json;q=0, text/html", false},
		{"application/json;q=0", false},
		{"text/html, application/json;q=0.5", false},
		{"application/json;q=0.9, text/html;q=0.5", true},
		{"garbage;;;", false},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		isJSON := resp.Header.Get("Content-Type") == "application/json"
		if resp.StatusCode != 200 || isJSON != tt.wantJSON {
			t.Errorf("Accept %q: %d %s, want JSON %v", tt.accept, resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantJSON)
		}
		if v := resp.Header.Get("Vary"); !strings.Contains(v, "Accept") {
			t.Errorf("Accept %q: Vary = %q, want Accept (the answer depends on it)", tt.accept, v)
		}
	}
}

func TestAdminBodyEdges(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"trailing garbage", `{"policy":"porch","action":"on","reason":"r"} {"policy":"porch","action":"off","reason":"r"}`, 400},
		{"trailing junk", `{"policy":"porch","action":"on","reason":"r"}x`, 400},
		{"trailing space", `{"policy":"porch","action":"on","reason":"r"}` + "\n ", 200},
		{"null", `null`, 400},
		{"array", `[]`, 400},
		{"args not strings", `{"policy":"porch","action":"on","reason":"r","args":{"a":1}}`, 400},
		{"empty", ``, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, l := newAdmin(t, bulwarkhttp.WithAdminToken("t"), quiet)
			resp := post(t, srv.URL, "Bearer t", "application/json", tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("POST %s = %d, want %d", tt.body, resp.StatusCode, tt.want)
			}
			if tt.want != 200 && l.Snapshot().State != "off" {
				t.Error("a refused body changed the lamp")
			}
		})
	}
}

// A token read from a file keeps its newline; a header cannot carry one,
// so the configured token is trimmed rather than never matching.
func TestAdminTokenTrimmed(t *testing.T) {
	srv, l := newAdmin(t, bulwarkhttp.WithAdminToken("s3cret\n"), quiet)
	resp := post(t, srv.URL, "Bearer s3cret", "application/json", `{"policy":"porch","action":"on","reason":"r"}`)
	if resp.StatusCode != 200 || l.Snapshot().State != "on" {
		t.Errorf("POST with the trimmed token = %d, want 200", resp.StatusCode)
	}
	// A token of blanks is no token: mutations stay disabled.
	srv2, _ := newAdmin(t, bulwarkhttp.WithAdminToken(" \n"))
	if r := post(t, srv2.URL, "Bearer x", "application/json", `{}`); r.StatusCode != 403 {
		t.Errorf("POST with a blank token configured = %d, want 403", r.StatusCode)
	}
}

// Hostile names, reasons and labels reach the page only as data: the
// embedded state has no markup that could end the script element.
func TestAdminPageEscapes(t *testing.T) {
	reg := bulwark.NewRegistry()
	evil := `</script><script>alert(1)</script>"><img src=x onerror=alert(2)>`
	reg.RegisterAs(evil, fixed{bulwark.Snapshot{Kind: evil, State: evil, Reason: evil,
		Figures: []bulwark.Figure{{Name: evil, Value: 1, Unit: evil}},
		Events:  []bulwark.Event{{To: evil, Reason: evil + "\u2028"}}}})
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminTitle(evil)))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if n := strings.Count(strings.ToLower(page), "<script"); n != 2 {
		t.Errorf("page has %d <script elements, want 2 (the state and the code)", n)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe") || !strings.Contains(csp, "style-src 'nonce-") {
		t.Errorf("CSP = %q, want styles by nonce too, nothing unsafe-inline", csp)
	}
	if strings.Contains(page, "<img") || strings.Contains(page, "\u2028") {
		t.Error("hostile markup reached the page unescaped")
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="initial">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no initial state element")
	}
	var st adminState
	if err := json.Unmarshal([]byte(m[1]), &st); err != nil || len(st.Policies) != 1 || st.Policies[0].Name != evil || st.Policies[0].Reason != evil {
		t.Errorf("initial state = %+v, %v; want the hostile strings intact as data", st, err)
	}
}

// A registry of thousands of entries: every one shown, once.
func TestAdminManyPolicies(t *testing.T) {
	reg := bulwark.NewRegistry()
	const n = 3000
	for i := range n {
		reg.Register(&lamp{name: fmt.Sprintf("lamp-%04d", i)})
	}
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("t"), quiet))
	defer srv.Close()
	_, s := getJSON(t, srv.URL)
	if len(s.Policies) != n || s.Policies[n-1].Name != fmt.Sprintf("lamp-%04d", n-1) || len(s.Policies[n-1].Actions) != 3 {
		t.Fatalf("got %d policies, want %d in order with their actions", len(s.Policies), n)
	}
}

// Mutations and reads at once, under -race; registering and unregistering
// meanwhile.
func TestAdminConcurrent(t *testing.T) {
	reg := bulwark.NewRegistry()
	l := &lamp{name: "porch"}
	reg.Register(l)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("t"), bulwarkhttp.WithAdminLogger(slog.New(slog.DiscardHandler))))
	defer srv.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := range 10 {
				action := []string{"on", "off"}[(g+i)%2]
				req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"policy":"porch","action":"`+action+`","reason":"load"}`))
				req.Header.Set("Authorization", "Bearer t")
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("POST = %d", resp.StatusCode)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set("Accept", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("GET = %d", resp.StatusCode)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 10 {
				name := fmt.Sprintf("tmp-%d-%d", g, i)
				reg.Register(&lamp{name: name})
				reg.Unregister(name)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(l.events.Events()); n != 40 {
		t.Errorf("lamp recorded %d changes, want 40", n)
	}
}

// The JSON document's top-level fields are documented and stable.
func TestAdminJSONFields(t *testing.T) {
	srv, _ := newAdmin(t)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 3 || doc["time"] == nil || doc["mutations"] == nil || doc["policies"] == nil {
		t.Errorf("top-level fields = %v, want time, mutations, policies", doc)
	}
	// An empty registry is an empty list, not null.
	srv2 := httptest.NewServer(bulwarkhttp.Admin(bulwark.NewRegistry()))
	defer srv2.Close()
	resp2, err := http.Get(srv2.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.Contains(string(b), `"policies":[]`) {
		t.Errorf("empty registry json = %s, want policies []", b)
	}
}
