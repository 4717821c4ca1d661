//go:build pprof

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
)

// serveProfiles, in a build with -tags pprof only, serves Go's profiles
// (/debug/pprof/) on the loopback address in EGRESSGATE_PPROF, for the
// scale benchmark's profiling (docs/benchmarks.md). Release builds have no
// such endpoint: profiles show what the process holds.
func serveProfiles() {
	addr := os.Getenv("EGRESSGATE_PPROF")
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "EGRESSGATE_PPROF must be a loopback host:port, not %q\n", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
}
