package xds

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExtProcClusterOnAUnixSocket(t *testing.T) {
	c, err := extProcClusterFor("unix:/run/egressgate/extproc.sock", []byte("a CA that must not be used"))
	require.NoError(t, err)
	assert.Equal(t, clusterv3.Cluster_STATIC, c.GetType())
	addr := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress()
	assert.Equal(t, "/run/egressgate/extproc.sock", addr.GetPipe().GetPath())
	assert.Nil(t, c.GetTransportSocket(), "nothing crosses a network: no TLS on a local socket")
	assert.Contains(t, c.GetTypedExtensionProtocolOptions(), httpProtocolOptionsID, "gRPC needs HTTP/2")

	_, err = extProcClusterFor("unix:", nil)
	assert.Error(t, err)
}
