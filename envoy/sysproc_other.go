//go:build !linux

package envoy

import "syscall"

// sysProcAttr: Pdeathsig is Linux-only, so elsewhere an Envoy can outlive
// a crashed egressgate; Stop and the Start context still end it normally.
func sysProcAttr() *syscall.SysProcAttr { return nil }
