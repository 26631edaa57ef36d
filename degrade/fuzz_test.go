package degrade_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/degrade"
)

// FuzzLoad: any document either applies as it says or is rejected with
// the last good state kept; Load never panics.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{goodDoc, `{}`, `{"switches": {"recommendations": {"on": false}}}`,
		`{"shedders": {"api": {"level": 3, "reason": "x"}}}`, `{"limiters": {"api-limiter": {"limit": 0}}}`,
		`{"shedders": {"api": {"level": 4}}}`, `[`, `null`, `{"switches": null}`, `{"switches": {"recommendations": {"on": null}}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		fx := newFixture(t)
		if err := fx.load(goodDoc); err != nil {
			t.Fatal(err)
		}
		err := degrade.Load(fx.reg, strings.NewReader(doc), quiet())
		if err != nil {
			if st := fx.sw.Status(); !st.On || st.Reason != "INC-7" || fx.sh.Level() != 2 {
				t.Fatalf("Load(%q) = %v but changed the state: switch %+v, level %d", doc, err, st, fx.sh.Level())
			}
			return
		}
		var cfg degrade.Config
		if err := json.Unmarshal([]byte(doc), &cfg); err != nil {
			t.Fatalf("Load(%q) accepted a document encoding/json rejects: %v", doc, err)
		}
		wantOn := false
		if sc, ok := cfg.Switches["recommendations"]; ok {
			wantOn = *sc.On
		}
		if got := fx.sw.On(); got != wantOn {
			t.Errorf("Load(%q): switch on = %v, want %v", doc, got, wantOn)
		}
		wantLevel := 0
		if sc, ok := cfg.Shedders["api"]; ok {
			wantLevel = *sc.Level
		}
		if got := fx.sh.Level(); got != wantLevel || wantLevel < 0 || wantLevel > 3 {
			t.Errorf("Load(%q): level = %d, want %d in [0, 3]", doc, got, wantLevel)
		}
	})
}

// FuzzLevelsAbove: with no hold time, the level is always at least the
// level the signal calls for (raises are immediate) and at most the level
// its hysteresis keeps.
func FuzzLevelsAbove(f *testing.F) {
	f.Add([]byte{0, 10, 200, 100, 255, 0, 30})
	f.Fuzz(func(t *testing.T, data []byte) {
		th := []float64{0.5, 0.7, 0.9}
		const gap = 0.1
		var v float64
		s := degrade.NewShedder("fuzz", degrade.WithTrigger(degrade.LevelsAbove(func() float64 { return v }, th,
			degrade.WithInterval(0), degrade.WithHysteresis(gap))))
		prev := 0
		for len(data) >= 2 {
			v = float64(binary.LittleEndian.Uint16(data)) / math.MaxUint16 * 1.2
			data = data[2:]
			got := s.Level()
			up, keep := 0, 0
			for i, x := range th {
				if v >= x {
					up = i + 1
				}
				if v >= x-gap {
					keep = i + 1
				}
			}
			want := max(up, min(prev, keep))
			if got != want {
				t.Fatalf("signal %v after level %d: Level() = %d, want %d", v, prev, got, want)
			}
			prev = got
		}
	})
}
