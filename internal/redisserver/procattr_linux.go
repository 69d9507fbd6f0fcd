package redisserver

import "syscall"

// procAttr makes the kernel kill the server when the process that started
// it dies, even by SIGKILL or a test timeout, so no server outlives its
// test or load run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
