//go:build !unix

package redisserver

import (
	"errors"
	"os"
)

// Without SIGSTOP there is no pausing a process.
func pause(*os.Process) error  { return errors.ErrUnsupported }
func resume(*os.Process) error { return errors.ErrUnsupported }
