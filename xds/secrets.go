package xds

import (
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/egressgate/egressgate/pki"
)

// Certificate is the TLS certificate Envoy presents to the agent for one
// intercepted host, minted by the bottle CA: a pki.Leaf, so that every way
// Go prints, logs or marshals it leaves the private key out here too.
type Certificate = pki.Leaf

func leafSecret(host string, c Certificate) (*tlsv3.Secret, error) {
	if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
		return nil, fmt.Errorf("no certificate for intercepted host %s", host)
	}
	return tlsSecret(leafSecretName(host), c), nil
}

func tlsSecret(name string, c Certificate) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inlineBytes(c.CertPEM),
			PrivateKey:       inlineBytes(c.KeyPEM),
		}},
	}
}
