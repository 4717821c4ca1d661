package serve

import (
	"crypto/tls"
	"net"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/egressgate/egressgate/pki"
)

// serverNames are the names control's xDS certificate carries: the host
// its bootstraps and sidecars dial (--xds-address), the host it listens
// on, and loopback, so a sidecar on the same host may dial either.
func serverNames(listen, advertised string) []string {
	names := []string{}
	for _, addr := range []string{advertised, listen} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			continue
		}
		names = append(names, host)
	}
	names = append(names, "localhost", "127.0.0.1", "::1")
	// Keep the advertised host first: it is the certificate's CN.
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// tlsServerCreds serves TLS with a certificate for names from ca, minted
// again by the CA as it nears expiry, so a control plane running for
// months never serves an expired one.
func tlsServerCreds(ca *pki.CA, names []string) grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			leaf, err := ca.LeafFor(names, time.Now())
			if err != nil {
				return nil, err
			}
			cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
			return &cert, err
		},
	}))
}
