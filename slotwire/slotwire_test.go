package slotwire

import (
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

func TestSlotSnapshot(t *testing.T) {
	cert := &Certificate{CertPEM: []byte("cert"), KeyPEM: []byte("key")}
	snap, err := SlotSnapshot(slotPolicy(), cert, nil)
	require.NoError(t, err)
	secrets := snap.GetResources(resource.SecretType)
	require.Len(t, secrets, len(slotPolicy().Slots)+1, "every slot and the server certificate")

	got, ok, err := DecodeServerCert(secrets[ExtProcServerCertSecret].(*tlsv3.Secret))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, *cert, got)

	again, err := SlotSnapshot(slotPolicy(), cert, nil)
	require.NoError(t, err)
	require.Equal(t, snap.GetVersion(resource.SecretType), again.GetVersion(resource.SecretType), "equal content, equal version: nothing is pushed again")

	rotated := slotPolicy()
	rotated.Slots[1].Value = config.NewSecret("env-secret-2")
	next, err := SlotSnapshot(rotated, cert, nil)
	require.NoError(t, err)
	require.NotEqual(t, snap.GetVersion(resource.SecretType), next.GetVersion(resource.SecretType), "a rotated value is a new version")
}

func TestDecodeServerCert(t *testing.T) {
	_, ok, err := DecodeServerCert(&tlsv3.Secret{Name: "slot/EGRESS_TOKEN_0"})
	require.NoError(t, err)
	require.False(t, ok, "a slot is not the server certificate")

	_, ok, err = DecodeServerCert(&tlsv3.Secret{Name: ExtProcServerCertSecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}})
	require.True(t, ok)
	require.ErrorContains(t, err, "no inline certificate and key")
}
