package bulwarkhttp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/health"
)

// FuzzHealth sends arbitrary paths, queries and Accept headers: the handler
// answers one of its statuses, always with Cache-Control: no-store, and
// health+json answers are valid JSON.
func FuzzHealth(f *testing.F) {
	for _, s := range [][3]string{
		{"/readyz", "verbose", ""}, {"/livez/db", "", "application/health+json"},
		{"/x/startupz/", "exclude=db&exclude=", "application/health+json;q=0"},
		{"//readyz//db", "verbose&exclude=%ff", "*/*, application/health+json;q=.5"},
		{"/readyz/\x00", "exclude=drain", "application/health+json;;q"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	c := health.New()
	defer c.Close()
	c.Register("db", func(context.Context) error { return nil }, health.WithKind(health.Liveness|health.Readiness))
	c.Register("bad", func(context.Context) error { return health.Warning(context.Canceled) })
	h := bulwarkhttp.Health(c)
	f.Fuzz(func(t *testing.T, path, query, accept string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = &url.URL{Path: path, RawQuery: query}
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 503, 404:
		default:
			t.Fatalf("%q?%q: status %d", path, query, w.Code)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%q: no Cache-Control: no-store", path)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/health+json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%q: invalid health+json %q", path, w.Body)
		}
	})
}
