package bulwark_test

import (
	"context"
	"testing"

	"github.com/bulwark-go/bulwark"
)

func TestEndpoint(t *testing.T) {
	ctx := context.Background()
	if ep, ok := bulwark.EndpointFrom(ctx); ok || ep != "" {
		t.Errorf("EndpointFrom(background) = %q, %v, want none", ep, ok)
	}
	if _, ok := bulwark.EndpointFrom(bulwark.WithEndpoint(ctx, "")); ok {
		t.Error("EndpointFrom() of an empty endpoint = ok, want not ok")
	}
	inner := bulwark.WithEndpoint(bulwark.WithKey(bulwark.WithEndpoint(ctx, "a"), "tenant"), "b")
	if ep, ok := bulwark.EndpointFrom(inner); !ok || ep != "b" {
		t.Errorf("EndpointFrom() = %q, %v, want the innermost b", ep, ok)
	}
	if bulwark.KeyFrom(inner) != "tenant" {
		t.Error("WithEndpoint hid the CallInfo below it")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = bulwark.EndpointFrom(inner) }); n != 0 {
		t.Errorf("EndpointFrom allocates %v times, want 0", n)
	}
}
