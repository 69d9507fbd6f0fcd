//go:build !linux

package redisserver

import "syscall"

// procAttr has no parent-death signal outside Linux; callers kill their
// servers on every exit path.
func procAttr() *syscall.SysProcAttr { return nil }
