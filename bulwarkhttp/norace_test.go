//go:build !race

package bulwarkhttp_test

const raceEnabled = false
