package source

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// nullSink stores nothing; it counts records.
type nullSink struct{ n atomic.Int64 }

func (s *nullSink) StoreBlock(_ context.Context, b Block) error {
	s.n.Add(int64(len(b.Records)))
	return nil
}

func benchGenerator(b *testing.B) (*BlockGenerator, *nullSink) {
	sink := &nullSink{}
	g := NewBlockGenerator(GeneratorConfig{Interval: 10 * time.Millisecond, Sink: sink, MaxRecords: 1 << 16, Logger: quiet})
	g.Start(context.Background())
	b.Cleanup(func() { g.Stop() })
	return g, sink
}

// BenchmarkGeneratorWrite: untagged writes from one writer, the hot path.
func BenchmarkGeneratorWrite(b *testing.B) {
	g, _ := benchGenerator(b)
	rec := "a record of some forty bytes, give or take"
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeneratorWriteParallel: untagged writes from concurrent writers.
func BenchmarkGeneratorWriteParallel(b *testing.B) {
	g, _ := benchGenerator(b)
	rec := "a record of some forty bytes, give or take"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := g.Write(rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSocketPlain: records over one plain (no acknowledgement)
// loopback connection into a generator, until all are stored.
func BenchmarkSocketPlain(b *testing.B) {
	g, sink := benchGenerator(b)
	s := NewSocket("127.0.0.1:0", SocketOptions{Logger: quiet})
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Receive(ctx, g) }()
	defer func() { cancel(); <-done }()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	const batch = 1000
	var data []byte
	for i := range batch {
		data = fmt.Appendf(data, "record %08d of some forty bytes or so\n", i)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var want int64
	for b.Loop() {
		if _, err := conn.Write(data); err != nil {
			b.Fatal(err)
		}
		want += batch
	}
	for sink.n.Load()+int64(g.Stats().Buffered) < want {
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkGeneratorWriteTagged: tagged writes from one writer (an
// acknowledged connection).
func BenchmarkGeneratorWriteTagged(b *testing.B) {
	g, _ := benchGenerator(b)
	var stored atomic.Int64
	tag := NewTag(func(n int) { stored.Add(int64(n)) })
	rec := "a record of some forty bytes, give or take"
	b.ReportAllocs()
	for b.Loop() {
		if err := g.WriteTagged(rec, tag); err != nil {
			b.Fatal(err)
		}
	}
}
