package xdsauth

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func authenticated(node string) context.Context {
	return as(node, RoleEnvoy)
}

func as(node string, role Role) context.Context {
	return context.WithValue(context.Background(), identityKey{}, Identity{Node: node, Role: role})
}

func requireCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, status.Code(err), err.Error())
}

func TestNodeGuard(t *testing.T) {
	g := NewNodeGuard()
	requireCode(t, g.Open(context.Background(), 1), codes.Unauthenticated)
	requireCode(t, g.Check(1, nodeProto("a"), ""), codes.Unauthenticated)

	require.NoError(t, g.Open(authenticated("a"), 1))
	require.NoError(t, g.Check(1, nodeProto("a"), ""))
	require.NoError(t, g.Check(1, nodeProto(""), ""), "Envoy names its node on the first message only")
	err := g.Check(1, nodeProto("b"), "")
	requireCode(t, err, codes.PermissionDenied)
	require.ErrorContains(t, err, `node "b" presented a token for "a"`)

	g.Close(1)
	requireCode(t, g.Check(1, nodeProto("a"), ""), codes.Unauthenticated)
}

// go-control-plane counts SotW and delta streams separately; stream 1 of
// each must not share (or overwrite) a binding.
func TestNodeGuardKeepsDeltaStreamsApart(t *testing.T) {
	g := NewNodeGuard()
	require.NoError(t, g.Open(authenticated("a"), 1))
	require.NoError(t, g.OpenDelta(authenticated("b"), 1))
	require.NoError(t, g.Check(1, nodeProto("a"), ""))
	requireCode(t, g.Check(1, nodeProto("b"), ""), codes.PermissionDenied)
	require.NoError(t, g.CheckDelta(1, nodeProto("b"), ""))
	requireCode(t, g.CheckDelta(1, nodeProto("a"), ""), codes.PermissionDenied)

	g.CloseDelta(1)
	require.NoError(t, g.Check(1, nodeProto("a"), ""), "closing the delta stream leaves the SotW one")
	requireCode(t, g.CheckDelta(1, nodeProto("b"), ""), codes.Unauthenticated)
}

func TestNodeGuardBoundsClientSuppliedNodeIDs(t *testing.T) {
	g := NewNodeGuard()
	require.NoError(t, g.Open(authenticated("a"), 1))
	long := "x\n" + string(make([]byte, 10000))
	err := g.Check(1, nodeProto(long), "")
	requireCode(t, err, codes.PermissionDenied)
	require.NotContains(t, err.Error(), "\n", "a node id cannot break a log line")
	require.Less(t, len(err.Error()), 400)
}

func TestCheckNode(t *testing.T) {
	require.NoError(t, CheckNode(authenticated("a"), nodeProto("a"), ""))
	requireCode(t, CheckNode(authenticated("a"), nodeProto(""), ""), codes.PermissionDenied)
	requireCode(t, CheckNode(authenticated("a"), nodeProto("b"), ""), codes.PermissionDenied)
	requireCode(t, CheckNode(context.Background(), nodeProto("a"), ""), codes.Unauthenticated)
}

func TestNodeGuardConcurrentStreams(t *testing.T) {
	g := NewNodeGuard()
	var wg sync.WaitGroup
	for i := range int64(64) {
		wg.Go(func() {
			node := fmt.Sprint("n", i%4)
			if err := g.Open(authenticated(node), i); err != nil {
				t.Error(err)
				return
			}
			if err := g.Check(i, nodeProto(node), ""); err != nil {
				t.Error(err)
			}
			g.Close(i)
		})
	}
	wg.Wait()
	require.Empty(t, g.streams)
}

// TestNodeGuardBindsRoles: the node cluster picks the snapshot (a bottle's
// Envoy or its sidecar's slots), so each role may present only its own,
// and fetch only its own resource types.
func TestNodeGuardBindsRoles(t *testing.T) {
	sidecar := &corev3.Node{Id: "a", Cluster: ExtProcCluster}
	envoy := &corev3.Node{Id: "a", Cluster: "egressgate"}
	tests := []struct {
		name string
		role Role
		node *corev3.Node
		typ  string
		want codes.Code
	}{
		{"sidecar fetches its slots", RoleExtProc, sidecar, resource.SecretType, codes.OK},
		{"sidecar as an Envoy", RoleExtProc, envoy, resource.SecretType, codes.PermissionDenied},
		{"sidecar with no cluster", RoleExtProc, &corev3.Node{Id: "a"}, resource.SecretType, codes.PermissionDenied},
		{"sidecar asks for listeners", RoleExtProc, sidecar, resource.ListenerType, codes.PermissionDenied},
		{"sidecar asks for clusters", RoleExtProc, sidecar, resource.ClusterType, codes.PermissionDenied},
		{"Envoy fetches listeners", RoleEnvoy, envoy, resource.ListenerType, codes.OK},
		{"Envoy fetches its leaf secrets", RoleEnvoy, envoy, resource.SecretType, codes.OK},
		{"Envoy with any other cluster", RoleEnvoy, &corev3.Node{Id: "a", Cluster: "x"}, resource.RouteType, codes.OK},
		{"Envoy as the sidecar", RoleEnvoy, sidecar, resource.SecretType, codes.PermissionDenied},
		{"Envoy as the sidecar, for listeners", RoleEnvoy, sidecar, resource.ListenerType, codes.PermissionDenied},
		{"Envoy asks for runtime", RoleEnvoy, envoy, resource.RuntimeType, codes.PermissionDenied},
		{"another bottle's sidecar", RoleExtProc, &corev3.Node{Id: "b", Cluster: ExtProcCluster}, resource.SecretType, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, delta := range []bool{false, true} {
				g := NewNodeGuard()
				var err error
				if delta {
					require.NoError(t, g.OpenDelta(as("a", tt.role), 1))
					err = g.CheckDelta(1, tt.node, tt.typ)
				} else {
					require.NoError(t, g.Open(as("a", tt.role), 1))
					err = g.Check(1, tt.node, tt.typ)
				}
				require.Equal(t, tt.want, status.Code(err), "delta %v: %v", delta, err)
			}
			require.Equal(t, tt.want, status.Code(CheckNode(as("a", tt.role), tt.node, tt.typ)), "fetch")
		})
	}
	// Later messages name no node; the type is still checked.
	g := NewNodeGuard()
	require.NoError(t, g.Open(as("a", RoleExtProc), 1))
	require.NoError(t, g.Check(1, sidecar, resource.SecretType))
	requireCode(t, g.Check(1, nil, resource.ListenerType), codes.PermissionDenied)
	// An audit key's identity opens no xDS stream.
	requireCode(t, g.Open(as("a", roleAudit), 2), codes.Unauthenticated)
}
