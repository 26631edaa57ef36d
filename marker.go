package bulwark

import "context"

// Degraded returns the name of the degradation switch or shedder that
// refused err, found as the first error in its wrap chain implementing
// interface{ Degraded() string } (degrade's refusals do). The server
// adapters send it as the Bulwark-Degraded header (gRPC metadata
// bulwark-degraded). It allocates nothing.
func Degraded(err error) (name string, ok bool) {
	d, ok := find[interface{ Degraded() string }](err)
	if !ok {
		return "", false
	}
	name = d.Degraded()
	return name, name != ""
}

type drillKey struct{}

// WithDrill returns a copy of ctx marked as synthetic traffic for the drill
// named name. The server adapters set it from the Bulwark-Drill header
// (gRPC metadata bulwark-drill); a drill scoped to its marker injects faults
// only into calls that carry it.
func WithDrill(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, drillKey{}, name)
}

// DrillFrom returns the drill marker in ctx, or "" when there is none.
func DrillFrom(ctx context.Context) string {
	s, _ := ctx.Value(drillKey{}).(string)
	return s
}
