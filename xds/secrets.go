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

// ExtProcServerCertSecret names the secret, in a sidecar's snapshot, that
// holds the certificate its ext_proc server presents to Envoy (minted by
// the control CA). It is no slot (SlotSecretPrefix), so the slot decoder
// passes it by.
const ExtProcServerCertSecret = "extproc/server-cert"

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

// DecodeServerCert returns the certificate and key PEM of a secret named
// ExtProcServerCertSecret; ok is false for any other secret.
func DecodeServerCert(s *tlsv3.Secret) (c Certificate, ok bool, err error) {
	if s.GetName() != ExtProcServerCertSecret {
		return Certificate{}, false, nil
	}
	tc := s.GetTlsCertificate()
	c = Certificate{CertPEM: tc.GetCertificateChain().GetInlineBytes(), KeyPEM: tc.GetPrivateKey().GetInlineBytes()}
	if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
		return Certificate{}, true, fmt.Errorf("secret %s holds no inline certificate and key", ExtProcServerCertSecret)
	}
	return c, true, nil
}
