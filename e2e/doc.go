// Package e2e runs grpc-go's own interoperability cases
// (google.golang.org/grpc/interop) through a server and a client wrapped in
// all four bulwarkgrpc interceptors. It is a module of its own so that the
// interop package's dependencies stay out of bulwark's go.mod.
//
// The interop helpers end the process on failure (log.Fatal), so each case
// runs in a child process: the test binary re-executes itself with
// BULWARK_E2E_CASE set, and TestMain runs that one case against the
// parent's server.
package e2e
