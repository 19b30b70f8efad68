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
// `ip netns exec`, then `dstream drill-host`, which hides the drill's work
// folder but for the host's own folder (a tmpfs over the work folder, in
// the mount namespace that `ip netns exec` made for it) before it becomes
// the process. So processes share the network and nothing else. With
// --store s3 (the default) the checkpoints and the job's outputs are in
// the S3 server on a host of its own. With --store folder the job's output
// folder is shared besides (bound back into every host): SaveAsTextFiles
// to a path writes each partition where its task runs and the master
// renames the folder, so it needs a file system every process reaches (as
// Spark's does: HDFS, NFS), which the shared out/ stands for.
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
	parent string   // the folder holding every host's private folder
	hidden string   // the folder every host sees nothing of but its own folder and shared
	shared []string // folders under hidden every host sees (--store folder: the output folder)

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
// parent, on a bridge of a free 10.213.X.0/24 subnet. Its processes see
// nothing of hidden, which holds parent, but their own folder and shared
// (folders under hidden). On error it takes back what it made.
func newHostNet(names []string, parent, hidden string, shared []string) (n *hostNet, err error) {
	n = &hostNet{ip: ipCommand(), prefix: fmt.Sprintf("%s%d", hostNetPrefix, os.Getpid()), parent: parent, hidden: hidden, shared: shared}
	for _, dir := range append([]string{parent}, shared...) {
		if rel, err := filepath.Rel(hidden, dir); err != nil || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s is not inside %s, the folder hidden from the hosts", dir, hidden)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
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
// namespace, with the work folder hidden but for its own folder and the
// shared ones, in its own folder, in
// a process group of its own (Ctrl-C is the drill's to handle). With
// watch, the process is drill-host, which runs exe as its child and kills
// it when its stdin closes: the caller keeps a pipe to it open.
func (n *hostNet) command(h *netHost, watch bool, exe string, args ...string) *exec.Cmd {
	all := []string{"netns", "exec", h.ns, exe, "drill-host", "--hide", n.hidden, "--home", h.home}
	for _, dir := range n.shared {
		all = append(all, "--share", dir)
	}
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

// runDrillHost is `dstream drill-host --hide DIR --home DIR/HOME [--share
// DIR/SHARED]... -- CMD ARGS`, not for people: run by `ip netns exec` for
// each process of `dstream drill --hosts`, in the mount namespace that made
// for it, it hides everything under --hide (the drill's work folder: a
// tmpfs over it) but --home and each --share (bound back in), moves to
// --home, points TMPDIR and HOME there, and becomes CMD.
func runDrillHost(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("drill-host", flag.ContinueOnError)
	hide := fs.String("hide", "", "the `folder` to hide (the drill's work folder)")
	home := fs.String("home", "", "this host's private `folder`, under --hide")
	var shared []string
	fs.Func("share", "a `folder` under --hide that stays visible (repeatable)", func(v string) error {
		shared = append(shared, v)
		return nil
	})
	watch := fs.Bool("watch-stdin", false, "run CMD as a child and SIGKILL it when stdin closes (the drill is gone), forwarding SIGTERM and SIGINT")
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return program.UsageError{Err: err}
	}
	switch {
	case *hide == "" || *home == "":
		return fmt.Errorf("drill-host: --hide and --home are required")
	case fs.NArg() == 0:
		return fmt.Errorf("drill-host: no command after --")
	}
	keep := append([]string{*home}, shared...)
	fds := make([]int, len(keep))
	for i, dir := range keep {
		if rel, err := filepath.Rel(*hide, dir); err != nil || !filepath.IsLocal(rel) {
			return fmt.Errorf("drill-host: %s is not inside %s", dir, *hide)
		}
		fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("drill-host: %s: %w", dir, err)
		}
		fds[i] = fd
	}
	if err := syscall.Mount("drill-hosts", *hide, "tmpfs", 0, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("drill-host: hiding %s (tmpfs): %w", *hide, err)
	}
	for i, dir := range keep {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("drill-host: %w", err)
		}
		if err := syscall.Mount(fmt.Sprintf("/proc/self/fd/%d", fds[i]), dir, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("drill-host: binding %s back: %w", dir, err)
		}
		syscall.Close(fds[i])
	}
	if err := os.Chdir(*home); err != nil {
		return fmt.Errorf("drill-host: %w", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "TMPDIR=") || strings.HasPrefix(kv, "HOME=")
	})
	env = append(env, "TMPDIR="+filepath.Join(*home, "tmp"), "HOME="+*home)
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
