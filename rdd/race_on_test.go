//go:build race

package rdd

// raceDetector reports whether the tests run with -race.
const raceDetector = true
