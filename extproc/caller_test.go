package extproc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/egressgate/egressgate/extprocapi"
)

func TestCallerKey(t *testing.T) {
	const key = "caller-key-for-tests"
	ctx := func(vals ...string) context.Context {
		md := metadata.MD{}
		for _, v := range vals {
			md.Append(extprocapi.MetadataCallerKey, v)
		}
		return metadata.NewIncomingContext(context.Background(), md)
	}
	require.True(t, callerKeyOK(ctx(key), key))
	require.False(t, callerKeyOK(ctx(), key), "no key")
	require.False(t, callerKeyOK(ctx("wrong"), key), "wrong key")
	require.False(t, callerKeyOK(ctx(key, key), key), "two keys")
	require.False(t, callerKeyOK(ctx(""), ""), "an empty key admits no one")
}
