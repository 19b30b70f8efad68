package source

import "syscall"

var errAddrInUse error = syscall.EADDRINUSE
