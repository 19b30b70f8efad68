// Package checkpoint stores what a streaming program needs to survive a
// crash: the checkpoints of its state streams and the master's metadata
// log. It is the durable layer under Spark Streaming's checkpoint
// directory and write-ahead log, built on a deliberately small object-store
// interface.
//
// # Store
//
// A [Store] holds objects by name and offers four operations: Put (atomic,
// durable once it returns), Get (a missing object's error wraps
// [ErrNotFound]), List (by prefix, sorted) and Delete (idempotent). Names
// are slash-separated relative paths; [ValidName] states the rules. [Dir]
// implements Store in a local directory, safely shared by the goroutines
// and processes of one machine; package checkpoint/s3store implements it in
// S3. Package checkpoint/storetest holds the contract as tests, which every
// implementation runs.
//
// [Open] opens the store at a location: a folder, or a URL of a scheme a
// store package registered ([RegisterScheme]; s3store registers
// s3://BUCKET/PREFIX). [CheckLocation] checks a location without opening
// it.
//
// Two optional capabilities serve file streams over a store: [Lister]
// (objects with their sizes and modification times) and [RangeGetter]
// (part of an object); Dir and s3store implement both.
//
// # Frames
//
// Everything this package writes, and what its callers write through it,
// is a frame ([Frame], [Unframe]): a magic number, a kind, a version, the
// payload's length, the payload and a CRC-32C of all of it. A reader tells
// a missing object ([ErrNotFound]) from a damaged one ([ErrCorrupt]: a
// truncated, altered or foreign object, never to be used) and from one a
// newer program wrote ([ErrUnknownVersion]); [FrameError] says which
// problem it found.
//
// # Checkpoints
//
// A checkpoint is a directory of parts written by any number of processes
// and then committed ([Commit]) by writing a commit record, last, that
// lists the parts and holds the caller's metadata. Checkpoints of one
// stream are sibling directories whose names sort in time order.
// [Committed] lists the committed ones, [Retain] keeps the newest K and
// removes what crashes left half written, and [Latest] finds the newest
// usable one, falling back past a corrupt or incomplete one and saying
// what it skipped.
//
// # Metadata log
//
// A [Log] is a sequence of framed records, one object each, numbered from
// 1. [Log.Replay] delivers them in order; a torn last record (the mark of a
// crash mid-append) is reported as a [TornTailError] that the caller may
// accept, while damage anywhere else is an error. A Log reopened after a
// crash continues after its last valid record.
//
// # Faults
//
// [FaultStore] fails chosen operations of any Store (see [Injector],
// [FailNth], [FailPrefix], [FailRandomly]); [CrashDir] is a Dir that
// crashes at a chosen write and stage, leaving the directory as a killed
// process would. Tests use them to check that every crash leaves state
// that recovery accepts.
package checkpoint
