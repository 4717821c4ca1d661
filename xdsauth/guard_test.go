package xdsauth

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func authenticated(node string) context.Context {
	return context.WithValue(context.Background(), nodeKey{}, node)
}

func requireCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, status.Code(err), err.Error())
}

func TestNodeGuard(t *testing.T) {
	g := NewNodeGuard()
	requireCode(t, g.Open(context.Background(), 1), codes.Unauthenticated)
	requireCode(t, g.Check(1, "a"), codes.Unauthenticated)

	require.NoError(t, g.Open(authenticated("a"), 1))
	require.NoError(t, g.Check(1, "a"))
	require.NoError(t, g.Check(1, ""), "Envoy names its node on the first message only")
	err := g.Check(1, "b")
	requireCode(t, err, codes.PermissionDenied)
	require.ErrorContains(t, err, `node "b" presented a token for "a"`)

	g.Close(1)
	requireCode(t, g.Check(1, "a"), codes.Unauthenticated)
}

// go-control-plane counts SotW and delta streams separately; stream 1 of
// each must not share (or overwrite) a binding.
func TestNodeGuardKeepsDeltaStreamsApart(t *testing.T) {
	g := NewNodeGuard()
	require.NoError(t, g.Open(authenticated("a"), 1))
	require.NoError(t, g.OpenDelta(authenticated("b"), 1))
	require.NoError(t, g.Check(1, "a"))
	requireCode(t, g.Check(1, "b"), codes.PermissionDenied)
	require.NoError(t, g.CheckDelta(1, "b"))
	requireCode(t, g.CheckDelta(1, "a"), codes.PermissionDenied)

	g.CloseDelta(1)
	require.NoError(t, g.Check(1, "a"), "closing the delta stream leaves the SotW one")
	requireCode(t, g.CheckDelta(1, "b"), codes.Unauthenticated)
}

func TestNodeGuardBoundsClientSuppliedNodeIDs(t *testing.T) {
	g := NewNodeGuard()
	require.NoError(t, g.Open(authenticated("a"), 1))
	long := "x\n" + string(make([]byte, 10000))
	err := g.Check(1, long)
	requireCode(t, err, codes.PermissionDenied)
	require.NotContains(t, err.Error(), "\n", "a node id cannot break a log line")
	require.Less(t, len(err.Error()), 400)
}

func TestCheckNode(t *testing.T) {
	require.NoError(t, CheckNode(authenticated("a"), "a"))
	requireCode(t, CheckNode(authenticated("a"), ""), codes.PermissionDenied)
	requireCode(t, CheckNode(authenticated("a"), "b"), codes.PermissionDenied)
	requireCode(t, CheckNode(context.Background(), "a"), codes.Unauthenticated)
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
			if err := g.Check(i, node); err != nil {
				t.Error(err)
			}
			g.Close(i)
		})
	}
	wg.Wait()
	require.Empty(t, g.streams)
}
