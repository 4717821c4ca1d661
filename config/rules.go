package config

import (
	"net"
	"regexp"
	"strings"
	"unicode"
)

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// hostProblem says what keeps h from being a route host, or "". A route
// host is exactly what the agent sends in CONNECT and SNI, so it is a bare
// lower-case DNS name: Envoy compares it byte for byte.
func hostProblem(h string) string {
	switch {
	case strings.Contains(h, "://"):
		return "is a URL; give the host name only"
	case strings.Contains(h, "*"):
		return "has a wildcard; list each host"
	case strings.Contains(h, "/"):
		return "has a path; a route names a host, paths go in matches"
	case strings.Contains(h, ":"):
		return "has a port; set upstream.address to reach another port"
	case net.ParseIP(h) != nil:
		return "is an IP address; name the DNS host and set upstream.address to the IP"
	case h != strings.ToLower(h):
		return "must be lower case"
	case len(h) > 253:
		return "is longer than 253 characters"
	}
	for label := range strings.SplitSeq(h, ".") {
		if !dnsLabelRE.MatchString(label) {
			return "is not a DNS name (labels of a-z, 0-9 and -, joined by dots)"
		}
	}
	return ""
}

// pathProblem says what keeps p from being a match path, or "". Envoy
// compares paths to the request's :path, so a query or fragment in the
// rule would never match the way it reads.
func pathProblem(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "must start with /"
	case strings.ContainsAny(p, "?#"):
		return "must not hold a query or fragment"
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "must not hold spaces or control characters"
	}
	return ""
}
