//go:build !race

package analytics

// raceDetector: the test binary is built with -race.
const raceDetector = false
