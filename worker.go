package dstream

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/dstream/dstream/checkpoint"
	"github.com/dstream/dstream/cluster"
)

// Standalone clusters. A program started with Master "cluster" is a master
// that listens on Config.ClusterListen; `APP worker --master HOST:PORT`
// on any machine joins it. The worker asks the master how its program was
// started and becomes that program (same binary, same arguments, so the
// same graph) in the worker role.

// WorkerMain is `APP worker [flags]`: it joins the master named by
// --master (one address, or a comma-separated list of them: the worker
// joins whichever answers as the active master, and moves to the next
// when the one it follows is gone or a standby), and does not return
// unless it fails (the process becomes the master's program, as a worker);
// then it returns the exit status (2 for a usage error, 1 otherwise) after
// printing the error to stderr. The command is cluster.WorkerCommand.
func WorkerMain(args []string, stderr io.Writer) int {
	return cluster.WorkerCommand(args, stderr, DefaultMemory)
}

// ClusterFlags registers the flags of a standalone master on fs
// (--cluster-listen, --cluster-advertise, --secret-file, --insecure, the
// --tls-* files) and returns the function that applies them to a Config
// (loading the secret); it leaves a Config whose Master is not "cluster"
// unchanged but for the TLS files and --health-listen
// (Config.HealthListen), which apply to every deployment.
func ClusterFlags(fs *flag.FlagSet) func(*Config) error {
	listen := fs.String("cluster-listen", DefaultClusterListen, "with --master cluster: `address` workers join at")
	advertise := fs.String("cluster-advertise", "", "with --master cluster: `address` workers reach the master at (default: --cluster-listen's)")
	secretFile := fs.String("secret-file", "", "with --master cluster: `file` holding the shared secret workers must present (default: $"+cluster.SecretEnv+")")
	insecure := fs.Bool("insecure", false, "with --master cluster: run without a secret (anyone reaching the port may join)")
	tlsFiles := cluster.TLSFlags(fs)
	healthListen := fs.String("health-listen", "", "`address` HOST:PORT to serve /healthz and /readyz on, for Kubernetes' probes (default: none)")
	return func(c *Config) error {
		if _, worker, _ := cluster.WorkerEnvFrom(os.Getenv); worker {
			return nil // a worker takes its secret, TLS files and health address from its environment
		}
		if *healthListen != "" {
			if _, _, err := net.SplitHostPort(*healthListen); err != nil {
				return fmt.Errorf("--health-listen %q: want HOST:PORT", *healthListen)
			}
		}
		c.TLSCert, c.TLSKey, c.TLSCA = tlsFiles()
		c.HealthListen = *healthListen
		if c.Master != "cluster" {
			return nil
		}
		secret, err := cluster.LoadSecret(*secretFile, *insecure)
		if err != nil {
			return err
		}
		c.ClusterListen, c.ClusterAdvertise, c.Secret, c.Insecure = *listen, *advertise, secret, *insecure
		return nil
	}
}

// JobFlags registers the flags of a job's recovery and rate control on fs
// (--checkpoint, --checkpoint-interval, --write-ahead-log, --backpressure,
// --max-rate, --initial-rate) and returns what applies them to a Config
// after parsing. The checkpoint location is checked (a malformed one is an
// error naming --checkpoint), and a folder is made absolute, so a worker
// started elsewhere (in a standalone cluster, the same program with the
// same arguments) writes to the same shared folder.
func JobFlags(fs *flag.FlagSet) func(*Config) error {
	dir := fs.String("checkpoint", "", "`location` for state checkpoints and the master's metadata log: a folder, or s3://BUCKET/PREFIX (configured by AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for an S3-compatible server, AWS_ENDPOINT_URL); running again with the same location resumes the job (a folder is the master's, which it serves to its workers)")
	every := fs.Duration("checkpoint-interval", 0, "how often state streams write a checkpoint (default: the larger of 10s and five slides)")
	bp := fs.Bool("backpressure", false, "adapt every receiver's rate to what the job processes (a PID controller, as Spark's spark.streaming.backpressure)")
	maxRate := fs.Int("max-rate", 0, "records per second each receiver takes in at most (0: no cap)")
	initial := fs.Int("initial-rate", 0, "with --backpressure: the rate receivers start at, until the first estimate (0: no limit until then)")
	leaseTTL := fs.Duration("lease-ttl", 0, "with --checkpoint: how long the master holds the location's lease without renewing it; a second master started with the same location waits as a standby and takes over within about this once the active one is gone (default "+DefaultLeaseTTL.String()+"; -1s: no lease)")
	wal := fs.Bool("write-ahead-log", false, "with --checkpoint: write every received block there before acknowledging it, so a restarted master loses no acknowledged record (as Spark's spark.streaming.receiver.writeAheadLog.enable)")
	return func(c *Config) error {
		switch {
		case *every < 0:
			return fmt.Errorf("--checkpoint-interval %v must not be negative", *every)
		case *maxRate < 0 || *initial < 0:
			return fmt.Errorf("--max-rate and --initial-rate must not be negative")
		case *wal && *dir == "":
			return fmt.Errorf("--write-ahead-log needs --checkpoint: the log is written in the checkpoint folder")
		}
		if *dir != "" {
			if err := checkpoint.CheckLocation(*dir); err != nil {
				return fmt.Errorf("--checkpoint: %w", err)
			}
		}
		c.CheckpointDir, c.CheckpointInterval = checkpoint.Absolute(*dir), *every
		c.Backpressure, c.MaxRate, c.InitialRate = *bp, *maxRate, *initial
		c.WriteAheadLog, c.LeaseTTL = *wal, *leaseTTL
		return nil
	}
}
