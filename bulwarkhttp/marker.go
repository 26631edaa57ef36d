package bulwarkhttp

import (
	"net/http"
	"slices"
)

// MarkDegraded tells the client that the response w is about to carry is
// degraded by the switch named name (a fallback answer, a feature left
// out): it adds name to the Bulwark-Degraded header, once. Call it before
// the response's WriteHeader or first Write, as for any header. A name
// that is empty, longer than 64 bytes or not visible ASCII is ignored.
// The middleware itself sends the header on a refusal by a degradation
// switch ([bulwark.Degraded]).
func MarkDegraded(w http.ResponseWriter, name string) {
	markDegraded(w.Header(), name)
}

func markDegraded(h http.Header, name string) {
	if !validMarker(name) || slices.Contains(h[headerDegraded], name) {
		return
	}
	h[headerDegraded] = append(h[headerDegraded], name)
}
