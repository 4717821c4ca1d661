//go:build !pprof

package main

// serveProfiles does nothing: profiles are served only by a build with
// -tags pprof (pprof.go).
func serveProfiles() {}
