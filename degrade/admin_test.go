package degrade_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/degrade"
)

// TestAdminPage steers a switch and a shedder through bulwarkhttp.Admin
// over loopback and reads their snapshots back.
func TestAdminPage(t *testing.T) {
	reg := bulwark.NewRegistry()
	sw := degrade.NewSwitch("recommendations")
	sh := degrade.NewShedder("api")
	reg.Register(sw, sh)
	srv := httptest.NewServer(bulwarkhttp.Admin(reg, bulwarkhttp.WithAdminToken("secret"),
		bulwarkhttp.WithAdminLogger(slog.New(slog.DiscardHandler))))
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer secret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"policy": "recommendations", "action": "on", "reason": "INC-9"}`); code != http.StatusOK {
		t.Fatalf("POST on = %d %s, want 200", code, body)
	}
	if st := sw.Status(); !st.On || st.Source != "manual" || st.Reason != "INC-9" {
		t.Errorf("switch after the admin action = %+v, want on, manual, INC-9", st)
	}
	if code, body := post(`{"policy": "api", "action": "set-level", "args": {"level": "3"}, "reason": "overload"}`); code != http.StatusOK {
		t.Fatalf("POST set-level = %d %s, want 200", code, body)
	}
	if sh.Level() != 3 {
		t.Errorf("shedder level = %d, want 3", sh.Level())
	}
	if code, _ := post(`{"policy": "api", "action": "set-level", "args": {"level": "7"}, "reason": "typo"}`); code != http.StatusBadRequest {
		t.Errorf("POST set-level 7 = %d, want 400", code)
	}

	resp, err := srv.Client().Get(srv.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Policies []bulwark.Snapshot `json:"policies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Policies) != 2 {
		t.Fatalf("page lists %d policies, want 2", len(page.Policies))
	}
	s0, s1 := page.Policies[0], page.Policies[1]
	if s0.Kind != "switch" || s0.State != "on" || s0.Reason != "INC-9" || len(s0.Actions) != 3 || len(s0.Events) != 1 {
		t.Errorf("switch snapshot = %+v", s0)
	}
	if s1.Kind != "shedder" || s1.State != "level 3" || s1.Health != "fail" || len(s1.Actions) != 2 {
		t.Errorf("shedder snapshot = %+v", s1)
	}
}
