//go:build race

package ratelimit_test

// raceEnabled reports whether the tests run under the race detector, which
// slows the long table tests down about tenfold.
const raceEnabled = true
