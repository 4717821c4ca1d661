// Package slotwire is the wire contract between `egressgate control` and a
// bottle's split-mode ext_proc sidecar (package slotsync): the sidecar's
// snapshot, holding the bottle's slot values, the certificate its ext_proc
// server presents to Envoy, and its DLP rules and canaries, as SDS
// secrets. The control side encodes (SlotSnapshot), the sidecar decodes
// (DecodeSlotSecret, DecodeServerCert, DecodeDLPSecret); neither end needs
// the Envoy translation (package xds) or the xDS server (package
// xdsserver) to speak it.
package slotwire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/pki"
)

// Certificate is the certificate and key (PEM) a sidecar's ext_proc server
// presents to Envoy, minted by the control CA: a pki.Leaf, so that every
// way Go prints, logs or marshals it leaves the private key out.
type Certificate = pki.Leaf

// ExtProcServerCertSecret names the secret, in a sidecar's snapshot, that
// holds its ext_proc server's Certificate. It is no slot
// (SlotSecretPrefix), so the slot decoder passes it by.
const ExtProcServerCertSecret = "extproc/server-cert"

// SlotSnapshot holds a policy's slot values for the bottle's split-mode
// ext_proc server, serverCert when not nil, and the inputs of its DLP
// scanner (the policy's rules and canaries, see DLPSecrets), versioned by
// their content like the Envoy snapshot.
func SlotSnapshot(p *config.Policy, serverCert *Certificate, canaries []dlp.Named) (*cache.Snapshot, error) {
	secrets, err := SlotSecrets(p)
	if err != nil {
		return nil, err
	}
	if serverCert != nil {
		secrets = append(secrets, serverCertSecret(*serverCert))
	}
	more, err := DLPSecrets(p.DLPRules, canaries)
	if err != nil {
		return nil, fmt.Errorf("bottle %s: %w", p.Name, err)
	}
	secrets = append(secrets, more...)
	version, err := hashResources(secrets)
	if err != nil {
		return nil, err
	}
	return cache.NewSnapshot(version, map[resource.Type][]types.Resource{resource.SecretType: secrets})
}

func serverCertSecret(c Certificate) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: ExtProcServerCertSecret,
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

// hashResources is a short content hash of resources; deterministic
// marshalling makes equal content give equal versions, so an unchanged
// slot set is not pushed again. (xds hashes Envoy's snapshot the same way;
// the two versions are never compared.)
func hashResources(list []types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, m := range list {
		b, err := opts.Marshal(m)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func inlineString(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}
