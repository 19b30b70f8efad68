package dstream

import (
	"flag"

	"github.com/dstream/dstream/bytesize"
)

// Bytes is a positive size in bytes as a flag's value (bytesize.Bytes).
type Bytes = bytesize.Bytes

// ParseBytes parses a size in bytes as the --memory flags take it
// (bytesize.Parse).
func ParseBytes(s string) (int64, error) { return bytesize.Parse(s) }

// DefaultMemory is the engine's memory budget when --memory is not given.
const DefaultMemory = 1 << 30

// MemoryFlag defines --memory on fs, the engine's memory budget
// (Config.MemoryBytes) as a Bytes, and returns where it is stored:
// DefaultMemory until the flag is set.
func MemoryFlag(fs *flag.FlagSet) *int64 { return bytesize.MemoryFlag(fs, DefaultMemory) }
