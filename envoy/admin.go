package envoy

import (
	"context"
	"net"
	"net/http"
)

// AdminURL is the base URL of requests sent through an AdminClient. The
// client dials the socket whatever the host says, so the host is never
// resolved; it only has to make a valid URL.
const AdminURL = "http://envoy-admin"

// AdminClient returns an HTTP client for the Envoy admin API listening on
// the Unix socket at path.
func AdminClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		// Proxy nil: egressgate may run with HTTP(S)_PROXY set for other
		// reasons, and the admin must never be reached through a proxy.
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		// Polling opens a request every few milliseconds; a kept-alive
		// connection to an Envoy that has since exited would only fail
		// the next one.
		DisableKeepAlives: true,
	}}
}
