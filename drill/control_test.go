package drill_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/drill"
)

var (
	_ bulwark.Policy      = (*drill.Drill)(nil)
	_ bulwark.Admitter    = (*drill.Drill)(nil)
	_ bulwark.Snapshotter = (*drill.Drill)(nil)
	_ bulwark.Controller  = (*drill.Drill)(nil)
	_ bulwark.Named       = (*drill.Drill)(nil)
)

func figure(s bulwark.Snapshot, name string) (float64, bool) {
	for _, f := range s.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func TestActionsDeclareParams(t *testing.T) {
	d := drill.New("d")
	acts := d.Actions()
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = a.Name
	}
	if !slices.Equal(names, []string{"arm", "disarm"}) {
		t.Fatalf("Actions() = %v, want arm and disarm", names)
	}
	var params []string
	for _, p := range acts[0].Params {
		params = append(params, p.Name)
		if p.Kind == "" {
			t.Errorf("param %s has no kind", p.Name)
		}
	}
	want := []string{"latency", "latency-max", "latency-probability", "error", "error-probability",
		"refusal-probability", "tiers", "keys", "marked", "expiry"}
	if !slices.Equal(params, want) {
		t.Errorf("arm params = %v, want %v", params, want)
	}
}

func TestControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := drill.New("pay")
		ctx := context.Background()
		err := d.Control(ctx, "arm", map[string]string{
			"latency": "100ms", "latency-max": "200ms", "latency-probability": "0.5",
			"error": "remote-unavailable", "error-probability": "0.25",
			"refusal-probability": "0.1", "tiers": "sheddable, sheddable_plus", "keys": "acme,initech",
			"marked": "true", "expiry": "10m",
		}, "game day: payments slow")
		if err != nil {
			t.Fatalf("Control(arm) = %v", err)
		}
		spec, until, ok := d.Armed()
		want := drill.Spec{
			Latency: drill.Latency{Min: 100 * time.Millisecond, Max: 200 * time.Millisecond, Probability: 0.5},
			Error:   drill.Error{Err: drill.ErrRemoteUnavailable, Probability: 0.25},
			Refusal: drill.Refusal{Probability: 0.1},
			Match:   drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus}, Keys: []string{"acme", "initech"}, Marked: true},
		}
		if !ok || spec.Latency != want.Latency || spec.Error != want.Error || spec.Refusal != want.Refusal ||
			!slices.Equal(spec.Match.Tiers, want.Match.Tiers) || !slices.Equal(spec.Match.Keys, want.Match.Keys) || !spec.Match.Marked {
			t.Errorf("Armed() = %+v, %v, want %+v", spec, ok, want)
		}
		if got := until.Sub(time.Now()); got != 10*time.Minute {
			t.Errorf("expires in %v, want 10m", got)
		}
		s := d.Snapshot()
		if s.Kind != "drill" || s.State != "armed" || s.Health != "warn" || s.Source != "manual" ||
			!strings.HasPrefix(s.Reason, "game day: payments slow") {
			t.Errorf("Snapshot() = %+v, want an armed drill with the manual change and its reason", s)
		}
		for name, v := range map[string]float64{"expires in": 600, "latency probability": 0.5, "latency min": 0.1,
			"latency max": 0.2, "error probability": 0.25, "refusal probability": 0.1} {
			if got, ok := figure(s, name); !ok || got != v {
				t.Errorf("figure %q = %v (present %v), want %v", name, got, ok, v)
			}
		}

		// Defaults: a bare error arms with probability 1 for 5 minutes.
		if err := d.Control(ctx, "arm", map[string]string{"error": "timeout"}, "r"); err != nil {
			t.Fatalf("Control(arm error) = %v", err)
		}
		spec, until, _ = d.Armed()
		if spec.Error.Err != drill.ErrTimeout || spec.Error.Probability != 1 || spec.Latency.Probability != 0 ||
			until.Sub(time.Now()) != drill.DefaultExpiry {
			t.Errorf("Armed() = %+v until +%v, want a timeout at probability 1 for the default expiry", spec, until.Sub(time.Now()))
		}

		if err := d.Control(ctx, "disarm", nil, "done"); err != nil {
			t.Fatalf("Control(disarm) = %v", err)
		}
		s = d.Snapshot()
		if s.State != "disarmed" || s.Reason != "done" {
			t.Errorf("after disarm: %q / %q, want disarmed / done", s.State, s.Reason)
		}
		if _, ok := figure(s, "expires in"); ok {
			t.Error("a disarmed drill shows an expiry")
		}
		ev := s.Events
		if len(ev) != 3 || ev[0].To != "armed" || ev[1].From != "armed" || ev[2].To != "disarmed" || ev[2].Source != "manual" {
			t.Errorf("events = %+v, want armed, re-armed, disarmed", ev)
		}
	})
}

func TestControlRejectsBadArgs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		action string
		args   map[string]string
	}{
		{"unknown action", "explode", nil},
		{"nothing to inject", "arm", map[string]string{}},
		{"bad duration", "arm", map[string]string{"latency": "fast"}},
		{"bad probability", "arm", map[string]string{"refusal-probability": "lots"}},
		{"probability above 1", "arm", map[string]string{"refusal-probability": "2"}},
		{"bad error kind", "arm", map[string]string{"error": "teapot"}},
		{"bad tier", "arm", map[string]string{"refusal-probability": "1", "tiers": "vip"}},
		{"empty key", "arm", map[string]string{"refusal-probability": "1", "keys": "a,,b"}},
		{"bad marked", "arm", map[string]string{"refusal-probability": "1", "marked": "maybe"}},
		{"expiry too long", "arm", map[string]string{"refusal-probability": "1", "expiry": "2h"}},
		{"negative expiry", "arm", map[string]string{"refusal-probability": "1", "expiry": "-1s"}},
		{"max below min", "arm", map[string]string{"latency": "2s", "latency-max": "1s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := drill.New("d")
			err := d.Control(context.Background(), tt.action, tt.args, "r")
			if !errors.Is(err, bulwark.ErrInvalidControl) {
				t.Errorf("Control() = %v, want ErrInvalidControl", err)
			}
			if _, _, ok := d.Armed(); ok {
				t.Error("a refused control armed the drill")
			}
		})
	}
}

// Arming from the admin page needs the token; with it, the drill is armed
// with the reason recorded.
func TestAdminArmRequiresToken(t *testing.T) {
	d := drill.New("checkout")
	reg := bulwark.NewRegistry()
	reg.Register(d)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("s3cret"),
		bulwarkhttp.WithAdminLogger(slog.New(slog.DiscardHandler))))
	defer srv.Close()
	post := func(token string) int {
		body := `{"policy":"checkout","action":"arm","args":{"refusal-probability":"1","expiry":"1m"},"reason":"rehearsal 12"}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tok := range []string{"", "wrong"} {
		if got := post(tok); got != http.StatusUnauthorized {
			t.Errorf("POST with token %q = %d, want 401", tok, got)
		}
		if _, _, ok := d.Armed(); ok {
			t.Fatalf("POST with token %q armed the drill", tok)
		}
	}
	if got := post("s3cret"); got != http.StatusOK {
		t.Fatalf("POST with the token = %d, want 200", got)
	}
	if _, _, ok := d.Armed(); !ok {
		t.Fatal("POST with the token did not arm the drill")
	}
	if err := d.Do(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, drill.ErrRefused) {
		t.Errorf("Do() = %v, want the refusal armed from the page", err)
	}

	// The page's JSON shows it armed, with the reason.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"?format=json", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Policies []bulwark.Snapshot `json:"policies"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Policies) != 1 || page.Policies[0].State != "armed" || !strings.HasPrefix(page.Policies[0].Reason, "rehearsal 12") ||
		len(page.Policies[0].Actions) != 2 {
		t.Errorf("page = %+v, want the armed drill with its reason and actions", page.Policies)
	}
}

// FuzzControlArm: whatever an operator types, Control either arms a drill
// whose spec is sound or refuses with ErrInvalidControl; it never panics.
func FuzzControlArm(f *testing.F) {
	f.Add("100ms", "1s", "0.5", "remote-unavailable", "1", "0.1", "sheddable,critical", "acme", "true", "5m")
	f.Add("", "", "", "none", "", "1", "", "", "", "")
	f.Add("-1s", "NaN", "Inf", "timeout", "-0", "1e309", "CRITICAL_PLUS", ",", "1", "9223372036854775807ns")
	f.Fuzz(func(t *testing.T, lat, latMax, latP, errKind, errP, refP, tiers, keys, marked, expiry string) {
		d := drill.New("fz")
		err := d.Control(context.Background(), "arm", map[string]string{
			"latency": lat, "latency-max": latMax, "latency-probability": latP, "error": errKind,
			"error-probability": errP, "refusal-probability": refP, "tiers": tiers, "keys": keys,
			"marked": marked, "expiry": expiry,
		}, "fuzz")
		spec, until, ok := d.Armed()
		if err != nil {
			if !errors.Is(err, bulwark.ErrInvalidControl) {
				t.Fatalf("Control() = %v, want ErrInvalidControl", err)
			}
			if ok {
				t.Fatal("a refused control armed the drill")
			}
			return
		}
		if !ok {
			t.Fatal("Control() = nil but the drill is not armed")
		}
		for _, p := range []float64{spec.Latency.Probability, spec.Error.Probability, spec.Refusal.Probability} {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("armed with probability %v", p)
			}
		}
		if spec.Latency.Probability > 0 && (spec.Latency.Min < 0 || (spec.Latency.Max != 0 && spec.Latency.Max < spec.Latency.Min)) {
			t.Fatalf("armed with latency %+v", spec.Latency)
		}
		if left := time.Until(until); left > time.Hour || left <= 0 {
			t.Fatalf("armed for %v, want within the 1h maximum", left)
		}
		if spec.Latency.Probability == 0 { // a real latency would slow the fuzzing down
			err := d.Do(bulwark.WithKey(context.Background(), keys), func(context.Context) error { return nil })
			if err != nil && !drill.IsInjected(err) {
				t.Fatalf("Do() = %v, want nil or an injected error", err)
			}
		}
	})
}
