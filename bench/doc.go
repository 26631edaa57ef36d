// Package bench compares bulwark's policies with peer libraries, side by
// side, and checks bulwark's overload behaviour in process.
//
// It is a separate module so that the peers (failsafe-go, gobreaker,
// x/time/rate, hystrix-go) never enter bulwark's own go.mod. Everything
// lives in its tests: run the comparison with
//
//	go test -run xxx -bench . -benchtime=100000x -count=3
//
// and the overload scenario with go test -run Overload -v.
package bench
