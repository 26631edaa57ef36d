package drill_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/drill"
)

// A drill that refuses the synthetic calls a test client marks, and leaves
// real traffic alone.
func Example() {
	d := drill.New("checkout")
	serve := func(ctx context.Context) error {
		return d.Do(ctx, func(context.Context) error { return nil }) // the handler
	}

	err := d.Arm(drill.Spec{
		Refusal: drill.Refusal{Probability: 1},
		Match:   drill.Match{Marked: true}, // only calls sent with Bulwark-Drill: checkout
	}, 10*time.Minute)
	fmt.Println("arm:", err)

	real := context.Background()
	synthetic := bulwark.WithDrill(context.Background(), "checkout")
	fmt.Println("real:", serve(real))
	err = serve(synthetic)
	fmt.Println("synthetic:", err)
	fmt.Println("injected:", drill.IsInjected(err), "503:", errors.Is(err, bulwark.ErrUnavailable))

	d.Disarm()
	fmt.Println("after disarm:", serve(synthetic))
	// Output:
	// arm: <nil>
	// real: <nil>
	// synthetic: drill checkout: injected refusal: bulwark: unavailable
	// injected: true 503: true
	// after disarm: <nil>
}

// Client side, inside the retry and breaker: a quarter of the calls to a
// downstream fail as if it answered 503, for the sheddable tier only. A
// seeded source makes the run repeatable.
func ExampleSpec() {
	d := drill.New("inventory", drill.WithRand(rand.NewPCG(1, 2)))
	_ = d.Arm(drill.Spec{
		Error: drill.Error{Err: drill.ErrRemoteUnavailable, Probability: 0.25},
		Match: drill.Match{Tiers: []bulwark.Priority{bulwark.Sheddable}},
	}, 0)
	ctx := bulwark.WithPriority(context.Background(), bulwark.Sheddable)
	failed := 0
	for range 1000 {
		if err := d.Do(ctx, func(context.Context) error { return nil }); errors.Is(err, bulwark.ErrRemoteUnavailable) {
			failed++
		}
	}
	spec, _, _ := d.Armed()
	fmt.Println(spec)
	fmt.Println("about a quarter failed:", failed > 200 && failed < 300)
	// Output:
	// error "drill: injected downstream unavailable: bulwark: remote unavailable" p=0.25; tiers sheddable
	// about a quarter failed: true
}
