package sched

import (
	"context"
	"testing"

	"github.com/dstream/dstream/rdd"
)

// BenchmarkLocalRunJob measures the scheduler's cost per job of trivial
// tasks on local[4]: what speculation must not slow down.
func BenchmarkLocalRunJob(b *testing.B) {
	n := rdd.NewNode(rdd.ID{Seq: 1}, "src", 64)
	l := NewLocal(LocalConfig{Slots: 4})
	job := &rdd.Job{Final: n, Partitions: allParts(64), Func: func(tc *rdd.TaskContext, p int) (any, error) { return p, nil }}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.RunJob(context.Background(), job); err != nil {
			b.Fatal(err)
		}
	}
}
