package scenarios

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuick runs every scenario's -quick form, as CI does: it asserts that
// each ran and produced its table and charts, never a timing.
func TestQuick(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o := Options{Quick: true}
	if addr, stop, err := StartRedis(); err == nil {
		defer stop()
		o.RedisAddr = addr
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("redis-server: %v (CI=true: .ci/run must install it)", err)
	}
	r := Run(ctx, o)
	if len(r.Tables) != len(All) {
		t.Fatalf("Run() produced %d tables, want one per scenario (%d)", len(r.Tables), len(All))
	}
	for _, tb := range r.Tables {
		if len(tb.Rows) == 0 {
			t.Errorf("table %q has no rows", tb.Title)
		}
		for _, row := range tb.Rows {
			if len(row) != len(tb.Header) {
				t.Errorf("table %q: row %v has %d cells, want %d", tb.Title, row, len(row), len(tb.Header))
			}
		}
	}
	for _, name := range []string{"goodput.svg", "amplification.svg"} {
		if _, ok := r.Charts[name]; !ok {
			t.Errorf("no chart %s", name)
		}
	}
	dir := t.TempDir()
	results := filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(results, []byte("# r\n\n<!-- report:begin -->\nkept\n<!-- report:end -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // writing twice replaces the section, it does not append it again
		if err := Write(results, r, true); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(results)
	if n := strings.Count(string(doc), BeginMarker); n != 1 || !strings.Contains(string(doc), "kept") {
		t.Errorf("RESULTS.md has %d scenario sections (want 1), report section kept: %v", n, strings.Contains(string(doc), "kept"))
	}
	svg, err := os.ReadFile(filepath.Join(dir, "goodput.svg"))
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("polyline")) {
		t.Errorf("goodput.svg = %.60q, %v; want an SVG line chart", svg, err)
	}
}

func TestSplice(t *testing.T) {
	for _, tt := range []struct{ name, give, want string }{
		{"empty", "", "\nB\nx\nE\n"},
		{"append", "head\n", "head\n\nB\nx\nE\n"},
		{"replace", "head\nB\nold\nE\ntail\n", "head\nB\nx\nE\ntail\n"},
	} {
		if got := Splice(tt.give, "B", "E", "x\n"); got != tt.want {
			t.Errorf("%s: Splice() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
