package bulwark_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/bulwark-go/bulwark"

// policyPackages are the packages named after a policy: they import neither
// net/http nor gRPC, directly or through another package of this module.
var policyPackages = []string{"breaker", "bulkhead", "ratelimit", "retry", "idempotency", "degrade", "drill", "health", "failover"}

// transportEngines are the packages of policyPackages the transports may
// import: the engines whose faces they are (DESIGN.md). They are still held
// to the policy rule above, so nothing reaches the transports through them.
var transportEngines = []string{"health"}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

// TestImportRules checks the layering of DESIGN.md with `go list`: the
// root imports only the standard library and the OpenTelemetry API (never
// the SDK); policy packages import neither net/http nor
// google.golang.org/grpc; the transport packages import no policy package
// but the engines of transportEngines.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	ours := func(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }
	// imports returns what path and the packages of this module it depends
	// on import directly.
	imports := func(path string) []string {
		p := pkgs[path]
		all := slices.Clone(p.Imports)
		for _, d := range p.Deps {
			if ours(d) {
				all = append(all, pkgs[d].Imports...)
			}
		}
		return all
	}
	if _, ok := pkgs[module]; !ok {
		t.Fatalf("go list did not list %s", module)
	}

	for _, imp := range imports(module) {
		otelAPI := strings.HasPrefix(imp, "go.opentelemetry.io/otel") && !strings.HasPrefix(imp, "go.opentelemetry.io/otel/sdk")
		internal := strings.HasPrefix(imp, module+"/internal/")
		if !pkgs[imp].Standard && !otelAPI && !internal {
			t.Errorf("root package imports %s; want only the standard library and the OpenTelemetry API", imp)
		}
	}
	for path := range pkgs {
		if !ours(path) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		if slices.Contains(policyPackages, top) {
			for _, imp := range imports(path) {
				if imp == "net/http" || strings.HasPrefix(imp, "net/http/") || strings.HasPrefix(imp, "google.golang.org/grpc") {
					t.Errorf("%s imports %s; policy packages import neither net/http nor gRPC", path, imp)
				}
			}
		}
		if top == "bulwarkhttp" || top == "bulwarkgrpc" {
			for _, d := range pkgs[path].Deps {
				for _, pol := range policyPackages {
					if slices.Contains(transportEngines, pol) {
						continue
					}
					if d == module+"/"+pol || strings.HasPrefix(d, module+"/"+pol+"/") {
						t.Errorf("%s depends on policy package %s; transports map classes, not policies", path, d)
					}
				}
			}
		}
	}
}
