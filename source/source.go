// Package source holds receivers, which take records in from outside the
// engine (a TCP socket, a folder), and the block generator, which cuts what a
// receiver takes in into blocks every block interval and hands them to the
// engine, applying backpressure when the engine falls behind. It also holds
// what a file stream (dstream.TextFileStream, which receives nothing) needs:
// the rule that selects each interval's files (FileRule), the folder's
// listing and the reading of a file's lines by splits (files.go).
//
// The engine runs one receiver per input stream: it calls Open from Start
// (so a port in use fails Start), then Receive with a BlockGenerator as the
// Writer, and when Receive returns it stops the generator, which stores the
// last partial block. A record is acknowledged once the block holding it is
// stored (BlockSink.StoreBlock returned nil).
package source

import (
	"context"
	"time"
)

// Block is the unit of received input: the records one receiver collected
// during one block interval.
type Block struct {
	Stream  int       // input stream id (assigned by the engine)
	Seq     int64     // per-stream sequence number, 0, 1, 2, ... with no gaps
	Time    time.Time // the cut time (see BlockGenerator), never later than the clock's reading at the cut; the engine assigns the block to the interval containing it
	Records []string
}

// BlockSink stores cut blocks. StoreBlock returns only once the block is
// stored: that is the acknowledgement. The engine implements it.
type BlockSink interface {
	StoreBlock(ctx context.Context, b Block) error
}

// Writer accepts records from a receiver. Write may block (backpressure) and
// returns an error once the generator is stopped or has failed.
type Writer interface {
	Write(rec string) error
}

// Receiver takes records in from outside.
type Receiver interface {
	// Name describes the receiver in logs and errors, e.g. "socket :9999".
	Name() string
	// Open acquires what the receiver needs (binds its port, checks its
	// folder); its error is returned from the engine's Start, e.g.
	// "source socket 127.0.0.1:9999: listen: address already in use".
	Open() error
	// Receive writes records to w until ctx is done or the source is
	// exhausted, then releases what Open acquired before returning. It is
	// called once, after a successful Open. It returns nil when ctx is
	// cancelled, and an error when w fails (the engine cannot take more) or
	// the source breaks for good.
	Receive(ctx context.Context, w Writer) error
}

var (
	_ Receiver = (*Socket)(nil)
	_ Receiver = (*Directory)(nil)
	_ Writer   = (*BlockGenerator)(nil)
)
