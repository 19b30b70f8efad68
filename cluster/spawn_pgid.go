//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package cluster

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own: a signal the terminal
// sends its foreground group (Ctrl-C) reaches the master only, which stops
// its local workers itself, after its graceful stop has used them. A
// worker still stops when the master is gone (its stdin closes).
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
