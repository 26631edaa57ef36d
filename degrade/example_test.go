package degrade_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/breaker"
	"github.com/bulwark-go/bulwark/degrade"
)

// A switch that code paths ask, flipped by hand during an incident.
func ExampleSwitch() {
	recs := degrade.NewSwitch("recommendations")
	page := func() string {
		if recs.On() {
			return "product page without recommendations"
		}
		return "product page with recommendations"
	}
	fmt.Println(page())
	recs.Set(true, "INC-42: recommender slow")
	fmt.Println(page())
	st := recs.Status()
	fmt.Println(st.Source, st.Reason)
	recs.Release()
	fmt.Println(page())
	// Output:
	// product page with recommendations
	// product page without recommendations
	// manual INC-42: recommender slow
	// product page with recommendations
}

// A switch tied to a circuit breaker: while the recommender's breaker is
// open, the switch is on and calls get the fallback at once. degrade
// imports no other policy package: the tie is a plain func.
func ExampleWhen() {
	recBreaker := breaker.New("recommender", breaker.WithConsecutiveFailures(2))
	recs := degrade.NewSwitch("recommendations",
		degrade.WithTrigger(degrade.When(func() bool {
			s := recBreaker.State()
			return s == breaker.StateOpen || s == breaker.StateForcedOpen
		}, degrade.WithInterval(0), degrade.WithReason("recommender breaker open"))),
		degrade.WithFallback(func(ctx context.Context, err error) error {
			fmt.Println("fallback: cached recommendations")
			return nil
		}))
	fetch := func(ctx context.Context) error {
		return recBreaker.Do(ctx, func(context.Context) error {
			fmt.Println("fetched fresh recommendations")
			return nil
		})
	}
	_ = recs.Do(context.Background(), fetch)
	recBreaker.ForceOpen() // as two failures in a row would
	_ = recs.Do(context.Background(), fetch)
	st := recs.Status()
	fmt.Println(st.Source+":", st.Reason)
	recBreaker.Reset()
	_ = recs.Do(context.Background(), fetch)
	// Output:
	// fetched fresh recommendations
	// fallback: cached recommendations
	// automatic: recommender breaker open
	// fetched fresh recommendations
}

// A shedder refuses the lower tiers first; CriticalPlus is never shed by a
// level.
func ExampleShedder() {
	api := degrade.NewShedder("api")
	api.SetLevel(2, "overload drill")
	for _, tier := range []bulwark.Priority{bulwark.Sheddable, bulwark.SheddablePlus, bulwark.Critical, bulwark.CriticalPlus} {
		ctx := bulwark.WithPriority(context.Background(), tier)
		err := api.Do(ctx, func(context.Context) error { return nil })
		name, _ := bulwark.Degraded(err)
		fmt.Printf("%-14s served=%v degraded-by=%q 503=%v\n", tier, err == nil, name, errors.Is(err, bulwark.ErrUnavailable))
	}
	// Output:
	// sheddable      served=false degraded-by="api" 503=true
	// sheddable-plus served=false degraded-by="api" 503=true
	// critical       served=true degraded-by="" 503=false
	// critical-plus  served=true degraded-by="" 503=false
}

// Resource-pressure shedding, as in go-zero and Sentinel: one level per
// threshold of a signal. Here the signal is a fake; in a service it is
// degrade.CPUUsage().
func ExampleLevelsAbove() {
	var load atomic.Int64
	signal := func() float64 { return float64(load.Load()) / 100 }
	api := degrade.NewShedder("api", degrade.WithTrigger(
		degrade.LevelsAbove(signal, []float64{0.8, 0.9, 0.95}, degrade.WithInterval(0), degrade.WithHysteresis(0.05))))
	for _, pct := range []int64{50, 85, 92, 88, 84, 97, 10} {
		load.Store(pct)
		fmt.Printf("cpu %d%% → level %d\n", pct, api.Level())
	}
	// Output:
	// cpu 50% → level 0
	// cpu 85% → level 1
	// cpu 92% → level 2
	// cpu 88% → level 2
	// cpu 84% → level 1
	// cpu 97% → level 3
	// cpu 10% → level 0
}

// Config applies to what is registered; a manual override beats it.
func ExampleLoad() {
	reg := bulwark.NewRegistry()
	recs := degrade.NewSwitch("recommendations")
	api := degrade.NewShedder("api")
	reg.Register(recs, api)

	err := degrade.Load(reg, strings.NewReader(`{
		"switches": {"recommendations": {"on": true, "reason": "black friday"}},
		"shedders": {"api": {"level": 1}}
	}`), quiet())
	fmt.Println(err, recs.On(), api.Level(), recs.Status().Source)

	err = degrade.Load(reg, strings.NewReader(`{"shedders": {"nope": {"level": 1}}}`), quiet())
	fmt.Println(err)
	fmt.Println(recs.On(), api.Level()) // the last good state is kept
	// Output:
	// <nil> true 1 config
	// degrade: config: shedder "nope" is not registered: degrade: bad config
	// true 1
}
