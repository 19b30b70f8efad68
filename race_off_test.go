//go:build !race

package dstream

// raceDetector reports whether the tests run with -race (each simulated
// seed then costs about twice as much).
const raceDetector = false
