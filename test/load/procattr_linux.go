package main

import "syscall"

// childProcAttr makes the kernel kill a child when the harness dies, even
// by SIGKILL, so no upstream or proxy outlives a run.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
