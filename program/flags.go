package program

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
