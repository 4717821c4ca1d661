package envoy

import "syscall"

// sysProcAttr puts Envoy in its own process group, so a Ctrl-C in the
// terminal reaches egressgate alone and egressgate decides when Envoy
// stops. Pdeathsig kills Envoy if egressgate dies without stopping it
// (crash, SIGKILL, OOM): an orphaned Envoy would keep serving the bottle's
// proxy port with a config nobody updates any more.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
