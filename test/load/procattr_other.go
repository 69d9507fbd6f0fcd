//go:build !linux

package main

import "syscall"

// childProcAttr has no parent-death signal outside Linux; the harness needs
// Linux (taskset) anyway, and kills its children on every exit path.
func childProcAttr() *syscall.SysProcAttr { return nil }
