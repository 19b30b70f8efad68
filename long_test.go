package dstream

import (
	"os"
	"strconv"
)

// longTests reports whether the long tests run: DSTREAM_LONG=1 in the
// environment, which CI sets (.ci/run). Without it the cluster simulation
// runs 20 seeds instead of 200 (60 under -race).
func longTests() bool {
	on, _ := strconv.ParseBool(os.Getenv("DSTREAM_LONG"))
	return on
}
