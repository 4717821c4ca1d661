// Package integration tests egressgate end to end: the real egressgate
// binary, a real Envoy, real TLS, a real CONNECT proxy client and a local
// upstream on loopback. Nothing here leaves the machine.
package integration
