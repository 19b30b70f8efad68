package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/dstream/dstream/client"
	"github.com/dstream/dstream/generate"
	"github.com/dstream/dstream/program"
)

// runSend is `dstream send`: inject newline-delimited records into a socket
// source, from a file (sent once) or a generator, optionally at a steady rate.
// It prints a one-line summary to stdout; warnings (reconnects) go to stderr.
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	newLogger := logFlag(fs)
	var o client.Options
	fs.StringVar(&o.To, "to", "", "HOST:PORT of the socket source, or a comma-separated list of them: when one cannot be reached the sender moves to the next, and with --ack resends there what was not acknowledged (required)")
	fs.StringVar(&o.File, "file", "", "send this file's lines once, then exit")
	fs.StringVar(&o.Generate, "generate", "", "generate records of this kind: "+strings.Join(generate.Kinds(), ", "))
	fs.Int64Var(&o.Seed, "seed", 1, "generator seed (the same seed gives the same records)")
	fs.IntVar(&o.Rate, "rate", 0, "records per second (0: as fast as the receiver takes them)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: at the end of the file, or never)")
	fs.Int64Var(&o.Count, "count", 0, "stop after this many records (0: no limit)")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", 30*time.Second, "give up when no connection can be made for this long")
	fs.BoolVar(&o.Ack, "ack", true, "ask the receiver to acknowledge stored records, resend what it did not acknowledge, and wait for every record to be acknowledged at the end (at least once: a record may be stored twice); --ack=false sends plain lines, for receivers other than dstream's")
	fs.IntVar(&o.MaxUnacked, "max-unacked", client.DefaultMaxUnacked, "with --ack, the most records sent and not yet acknowledged; the sender waits for acknowledgements beyond")
	fs.DurationVar(&o.AckTimeout, "ack-timeout", client.DefaultAckTimeout, "with --ack, fail when acknowledgements are awaited this long (at the end, or with --max-unacked records unacknowledged)")
	if err := parseFlags(fs, "--to HOST:PORT[,HOST:PORT...] (--file F | --generate KIND) [--rate N] [--duration D] [--count N] [--ack=false]", args, stdout); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return program.UsageError{Err: err}
	}
	o.Logger = newLogger(stderr, slog.LevelWarn)
	start := time.Now()
	st, err := client.Send(ctx, o)
	if err == nil || st.Records > 0 {
		fmt.Fprintf(stdout, "sent %d records (%d bytes) to %s in %v", st.Records, st.Bytes, o.To, time.Since(start).Round(time.Millisecond))
		if st.Reconnects > 0 {
			fmt.Fprintf(stdout, " with %d reconnects", st.Reconnects)
		}
		if o.Ack {
			fmt.Fprintf(stdout, "; %d acknowledged as stored", st.Acked)
			if st.Resent > 0 {
				fmt.Fprintf(stdout, ", %d resent", st.Resent)
			}
		}
		fmt.Fprintln(stdout)
	}
	return err
}
