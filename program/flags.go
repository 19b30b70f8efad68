package program

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/dstream/dstream"
)

// ParseFlags parses args into fs and rejects positional arguments. The flag
// package prints nothing: a malformed command line comes back as a
// UsageError, which Exit prints once (status 2). -h or --help prints
// "Usage: " and usage, a blank line, "Flags:" and fs's flags to stdout,
// and returns flag.ErrHelp (status 0).
//
// A flag's usage text may name its value's placeholder in back quotes
// (flag.UnquoteUsage): "output `folder`" prints as "-out folder". Only a
// single word may be quoted so; quote a command in a usage text otherwise.
func ParseFlags(fs *flag.FlagSet, usage string, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n", usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return flag.ErrHelp
	case err != nil:
		return UsageError{Err: err}
	case fs.NArg() > 0:
		return Usagef("unexpected arguments %q", fs.Args())
	}
	return nil
}

// Bytes is a positive size in bytes as a flag's value (flag.Value): it
// parses what dstream.ParseBytes takes ("512MiB", "2G", "1073741824") and
// prints in the largest binary unit that divides it ("1GiB").
type Bytes int64

// Set parses s; a size that does not parse or is not positive is an error.
func (b *Bytes) Set(s string) error {
	n, err := dstream.ParseBytes(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size %q must be positive", s)
	}
	*b = Bytes(n)
	return nil
}

// String prints the size as Set takes it.
func (b Bytes) String() string {
	n := int64(b)
	if n != 0 {
		for _, u := range []struct {
			shift uint
			name  string
		}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
			if n%(1<<u.shift) == 0 {
				return strconv.FormatInt(n>>u.shift, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// DefaultMemory is the engine's memory budget when --memory is not given.
const DefaultMemory = 1 << 30

// MemoryFlag defines --memory on fs, the engine's memory budget
// (dstream.Config.MemoryBytes) as a Bytes, and returns where it is stored:
// DefaultMemory until the flag is set.
func MemoryFlag(fs *flag.FlagSet) *int64 {
	n := int64(DefaultMemory)
	fs.Var((*Bytes)(&n), "memory", "engine memory budget shared by input, state and execution: a `size` such as 512MiB, 2G or a number of bytes")
	return &n
}
