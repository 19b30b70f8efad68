package program

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit statuses of a command (see the package comment).
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// UsageError marks an error in the command line: a flag that does not
// parse, a value out of range, a missing or extra argument. Exit status 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message (fmt.Errorf: %w
// wraps).
func Usagef(format string, args ...any) error {
	return UsageError{Err: fmt.Errorf(format, args...)}
}

// StartError marks a failure to start: the job could not begin (its port
// is in use, its output folder cannot be created, the context's Start
// failed). Exit status 2, as for a usage error: nothing ran.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ExitCode is the exit status of a command that ended with err: 0 for nil
// or flag.ErrHelp (--help was asked for and printed), 2 for a UsageError or
// a *StartError anywhere in err's chain, 1 for any other error.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, new(UsageError)), errors.As(err, new(*StartError)):
		return ExitUsage
	}
	return ExitFailed
}

// Exit prints how the command named name ended, once, on stderr, and
// returns its exit status (ExitCode): nothing for nil or flag.ErrHelp;
// "NAME: ERR" then "Run 'NAME --help' for its flags." for a UsageError;
// "NAME: ERR" for any other error.
func Exit(name string, err error, stderr io.Writer) int {
	code := ExitCode(err)
	switch {
	case code == ExitOK:
	case errors.As(err, new(UsageError)):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for its flags.\n", name, err, name)
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return code
}
