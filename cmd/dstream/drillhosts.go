package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/dstream/dstream/program"
)

// `dstream drill --hosts`: every process of the job on a host of its own.
// A host is a Linux network namespace joined to a bridge in the drill's
// namespace by a veth pair, with a private folder: each process runs under
// `ip netns exec`, then `dstream drill-host`, which hides every other
// host's folder (a tmpfs over the hosts' parent, in the mount namespace
// that `ip netns exec` made for it) before it becomes the process. So
// processes share the network and nothing else, except the job's output
// folder: SaveAsTextFiles writes each partition where its task runs and
// the master commits the folder, so it needs a file system every process
// reaches (as Spark's does: HDFS, NFS), which the shared out/ stands for.
//
// A link between two hosts is cut with a route in each of them (blackhole:
// packets vanish, as a cut cable; prohibit: the sender gets an error at
// once, as a firewall that rejects), and a host is cut off entirely by
// setting its veth's end on the bridge down. Names carry the drill's pid
// (dsd<pid>...), so parallel drills do not collide, and a drill removes
// what dead drills left (removeStaleHostNets).

// hostNetPrefix starts the name of every namespace, veth and bridge the
// drill makes; the drill's pid follows.
const hostNetPrefix = "dsd"

// staleName matches a name a drill made; its group is the drill's pid.
var staleName = regexp.MustCompile(`^` + hostNetPrefix + `([0-9]+)(br|v[0-9]+|-[a-z0-9-]+)$`)

// netHost is one host of the drill's network.
type netHost struct {
	name string // master, node-1, ..., store
	ns   string // its network namespace
	veth string // its veth's end on the bridge, in the drill's namespace
	addr string // its IPv4 address
	home string // its private folder (the drill's view of it)
}

// hostNet is the drill's network of hosts.
type hostNet struct {
	ip     string // the ip command
	prefix string // dsd<pid>
	bridge string
	gw     string // the bridge's address: the drill's own on the hosts' network
	hosts  []*netHost
	parent string // the folder holding every host's private folder

	mu      sync.Mutex
	made    []func() error // what Close undoes, in reverse
	removed []string       // leftovers of dead drills removed at the start
}

// ipCommand finds the ip command (iproute2).
func ipCommand() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	return "/usr/sbin/ip"
}

// errNeedsNetns is the start of --hosts' error where it cannot run.
const errNeedsNetns = "--hosts needs root and `ip netns` (iproute2) to make a network namespace per host"

// checkHostNetSupport fails at once, with a plain message, where the drill
// cannot make namespaces: not root, no ip command, or `ip netns add` fails.
func checkHostNetSupport() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s; this user (uid %d) is not root", errNeedsNetns, os.Geteuid())
	}
	ip := ipCommand()
	if _, err := os.Stat(ip); err != nil {
		return fmt.Errorf("%s; no ip command: %v", errNeedsNetns, err)
	}
	probe := fmt.Sprintf("%s%d-probe", hostNetPrefix, os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("%s; `ip netns add %s` failed: %v: %s", errNeedsNetns, probe, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command(ip, "netns", "del", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("`ip netns del %s` failed: %v: %s", probe, err, bytes.TrimSpace(out))
	}
	return nil
}

// run runs an ip command.
func (n *hostNet) run(args ...string) error {
	out, err := exec.Command(n.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// undo registers what Close runs to take back something made.
func (n *hostNet) undo(f func() error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.made = append(n.made, f)
}

// newHostNet makes a namespace per name, each with a private folder under
// parent, on a bridge of a free 10.213.X.0/24 subnet. On error it takes
// back what it made.
func newHostNet(names []string, parent string) (n *hostNet, err error) {
	n = &hostNet{ip: ipCommand(), prefix: fmt.Sprintf("%s%d", hostNetPrefix, os.Getpid()), parent: parent}
	n.removed = removeStaleHostNets(n.ip)
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	subnet, err := freeSubnet(n.ip)
	if err != nil {
		return nil, err
	}
	n.bridge, n.gw = n.prefix+"br", subnet+".1"
	if err := n.run("link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	n.undo(func() error { return n.run("link", "del", n.bridge) })
	if err := n.run("addr", "add", n.gw+"/24", "dev", n.bridge); err != nil {
		return nil, err
	}
	if err := n.run("link", "set", n.bridge, "up"); err != nil {
		return nil, err
	}
	for i, name := range names {
		h := &netHost{name: name, ns: n.prefix + "-" + name, veth: fmt.Sprintf("%sv%d", n.prefix, i),
			addr: fmt.Sprintf("%s.%d", subnet, i+2), home: filepath.Join(parent, name)}
		if err := os.MkdirAll(filepath.Join(h.home, "tmp"), 0o755); err != nil {
			return nil, err
		}
		if err := n.run("netns", "add", h.ns); err != nil {
			return nil, err
		}
		n.undo(func() error { return n.run("netns", "del", h.ns) })
		if err := n.run("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns); err != nil {
			return nil, err
		}
		n.undo(func() error {
			if err := n.run("link", "del", h.veth); err != nil && linkExists(n.ip, h.veth) {
				return err
			}
			return nil // gone with its namespace
		})
		for _, args := range [][]string{
			{"link", "set", h.veth, "master", n.bridge, "up"},
			{"-n", h.ns, "addr", "add", h.addr + "/24", "dev", "eth0"},
			{"-n", h.ns, "link", "set", "eth0", "up"},
			{"-n", h.ns, "link", "set", "lo", "up"},
		} {
			if err := n.run(args...); err != nil {
				return nil, err
			}
		}
		n.hosts = append(n.hosts, h)
	}
	return n, nil
}

// Close removes every namespace, veth and the bridge the drill made.
func (n *hostNet) Close() error {
	n.mu.Lock()
	made := n.made
	n.made = nil
	n.mu.Unlock()
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		if err := made[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// host returns the host named name.
func (n *hostNet) host(name string) *netHost {
	for _, h := range n.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// hostOf returns the host whose address addr ("IP:PORT") is on.
func (n *hostNet) hostOf(addr string) *netHost {
	ip, _, _ := strings.Cut(addr, ":")
	for _, h := range n.hosts {
		if h.addr == ip {
			return h
		}
	}
	return nil
}

// command returns the command that runs exe with args on h: in its network
// namespace, with every other host's folder hidden, in its own folder, in
// a process group of its own (Ctrl-C is the drill's to handle). With
// watch, the process is drill-host, which runs exe as its child and kills
// it when its stdin closes: the caller keeps a pipe to it open.
func (n *hostNet) command(h *netHost, watch bool, exe string, args ...string) *exec.Cmd {
	all := []string{"netns", "exec", h.ns, exe, "drill-host", "--hosts", n.parent, "--home", h.name}
	if watch {
		all = append(all, "--watch-stdin")
	}
	all = append(all, "--", exe)
	cmd := exec.Command(n.ip, append(all, args...)...)
	cmd.Dir = h.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Link cuts.
const (
	cutBlackhole = "blackhole" // packets between the two vanish
	cutProhibit  = "prohibit"  // a sender gets an error at once
	cutLinkDown  = "link-down" // the host's veth is down: it reaches no one
)

// cutPair cuts the link between a and b with a route of kind in each.
func (n *hostNet) cutPair(a, b *netHost, kind string) error {
	if err := n.run("-n", a.ns, "route", "add", kind, b.addr+"/32"); err != nil {
		return err
	}
	return n.run("-n", b.ns, "route", "add", kind, a.addr+"/32")
}

// healPair takes cutPair's routes away.
func (n *hostNet) healPair(a, b *netHost, kind string) error {
	return errors.Join(
		n.run("-n", a.ns, "route", "del", kind, b.addr+"/32"),
		n.run("-n", b.ns, "route", "del", kind, a.addr+"/32"))
}

// isolate cuts h off every other host (and the drill): its veth goes down.
func (n *hostNet) isolate(h *netHost) error { return n.run("link", "set", h.veth, "down") }

// rejoin takes isolate back.
func (n *hostNet) rejoin(h *netHost) error { return n.run("link", "set", h.veth, "up") }

// freeSubnet picks 10.213.X for the drill's hosts: from the pid on, the
// first X no address of this namespace is in.
func freeSubnet(ip string) (string, error) {
	out, err := exec.Command(ip, "-o", "-4", "addr").Output()
	if err != nil {
		return "", fmt.Errorf("ip -o -4 addr: %v", err)
	}
	start := os.Getpid() % 250
	for i := range 250 {
		s := fmt.Sprintf("10.213.%d", (start+i)%250+1)
		if !bytes.Contains(out, []byte(" "+s+".")) {
			return s, nil
		}
	}
	return "", errors.New("no free subnet 10.213.X.0/24 for the drill's hosts")
}

func linkExists(ip, name string) bool {
	return exec.Command(ip, "link", "show", name).Run() == nil
}

// removeStaleHostNets removes the namespaces, veths and bridges of drills
// whose process is gone, and returns their names.
func removeStaleHostNets(ip string) []string {
	stale := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		return err == nil && pid != os.Getpid() && !procAlive(pid)
	}
	var removed []string
	if out, err := exec.Command(ip, "netns", "list").Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && stale(f[0]) && exec.Command(ip, "netns", "del", f[0]).Run() == nil {
				removed = append(removed, f[0])
			}
		}
	}
	if out, err := exec.Command(ip, "-o", "link").Output(); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) && exec.Command(ip, "link", "del", name).Run() == nil {
				removed = append(removed, name)
			}
		}
	}
	return removed
}

// runDrillHost is `dstream drill-host --hosts DIR --home NAME -- CMD ARGS`,
// not for people: run by `ip netns exec` for each process of `dstream
// drill --hosts`, in the mount namespace that made for it, it hides every
// host's folder under DIR but DIR/NAME (a tmpfs over DIR, DIR/NAME bound
// back in), moves there, points TMPDIR at DIR/NAME/tmp, and becomes CMD.
func runDrillHost(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("drill-host", flag.ContinueOnError)
	parent := fs.String("hosts", "", "the `folder` of the hosts' private folders")
	name := fs.String("home", "", "this host's `name`: its folder under --hosts")
	watch := fs.Bool("watch-stdin", false, "run CMD as a child and SIGKILL it when stdin closes (the drill is gone), forwarding SIGTERM and SIGINT")
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return program.UsageError{Err: err}
	}
	switch {
	case *parent == "" || *name == "" || strings.ContainsRune(*name, '/'):
		return fmt.Errorf("drill-host: --hosts and --home (a plain name) are required")
	case fs.NArg() == 0:
		return fmt.Errorf("drill-host: no command after --")
	}
	home := filepath.Join(*parent, *name)
	fd, err := syscall.Open(home, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("drill-host: %s: %w", home, err)
	}
	if err := syscall.Mount("drill-hosts", *parent, "tmpfs", 0, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("drill-host: hiding %s (tmpfs): %w", *parent, err)
	}
	if err := os.Mkdir(home, 0o755); err != nil {
		return fmt.Errorf("drill-host: %w", err)
	}
	if err := syscall.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), home, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("drill-host: binding %s back: %w", home, err)
	}
	syscall.Close(fd)
	if err := os.Chdir(home); err != nil {
		return fmt.Errorf("drill-host: %w", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "HOME=")
	})
	env = append(env, "TMPDIR="+filepath.Join(home, "tmp"), "HOME="+home)
	exe, err := exec.LookPath(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("drill-host: %w", err)
	}
	if !*watch {
		return fmt.Errorf("drill-host: %w", syscall.Exec(exe, fs.Args(), env))
	}
	// A process started by `ip netns exec` does not die with the drill
	// (the parent-death signal does not hold there), so this one stays as
	// the host's init: its child dies when the drill's end of stdin
	// closes, and it exits with its child's status.
	cmd := exec.Command(exe, fs.Args()[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("drill-host: %w", err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = cmd.Process.Kill()
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(exit.ExitCode())
	}
	return fmt.Errorf("drill-host: %w", err)
}
