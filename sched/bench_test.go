package sched

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// BenchmarkCoreInterval measures the core's cost per task as the cluster
// grows: one interval's job of trivial tasks on N workers of 8 slots (and
// a reserved master), speculation on as in a cluster: a map stage of one
// task per slot, then 8 reduce tasks. Every task takes 10 ms and they end
// in the order they were placed; the core is ticked ten times a job (a
// 100 ms tick, a 1 s interval). Reported per task: the cost must not grow
// with N.
func BenchmarkCoreInterval(b *testing.B) {
	for _, workers := range []int{10, 25, 50, 100, 250, 1000} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			c := NewCore(4)
			c.Reserved = "master"
			c.Speculation = DefaultSpeculation()
			now := time.Unix(0, 0)
			c.AddWorker(now, "master", 1)
			for i := range workers {
				c.AddWorker(now, fmt.Sprintf("w%d", i), 8)
			}
			maps := 8 * workers
			src := rdd.NewNode(rdd.ID{Seq: 1}, "src", maps)
			dep := &rdd.ShuffleDep{ID: rdd.ID{Seq: 2}, Parent: src, NumReduce: 8}
			red := rdd.NewNode(rdd.ID{Seq: 2}, "reduced", 8, dep)
			job := &rdd.Job{Final: red, Partitions: allParts(8), Kind: rdd.KindCount}
			tasks := 0
			id := 0
			b.ReportAllocs()
			for b.Loop() {
				id++
				var fifo []Run
				done := false
				take := func(ds []Decision) {
					for _, d := range ds {
						switch d := d.(type) {
						case Run:
							fifo = append(fifo, d)
						case JobDone:
							if d.Err != nil {
								b.Fatal(d.Err)
							}
							done = true
						}
					}
				}
				take(c.Submit(now, id, job))
				for ended := 0; !done; ended++ {
					r := fifo[0]
					fifo = fifo[1:]
					now = r.Start.Add(10 * time.Millisecond)
					take(c.TaskEnded(now, r.Task, r.Worker, int64(1), nil))
					tasks++
					if ended%(maps/10) == 0 {
						take(c.Tick(now))
					}
				}
				c.ForgetShuffles(func(rdd.ID) bool { return true })
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tasks), "ns/task")
		})
	}
}
