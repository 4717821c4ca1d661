package extproc

import (
	"context"
	"crypto/subtle"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/egressgate/egressgate/extprocapi"
)

// CallerKeyInterceptor refuses every stream that does not present the key
// key returns when the stream opens (a sidecar's key follows its token).
func CallerKeyInterceptor(key func() string) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !callerKeyOK(ss.Context(), key()) {
			return status.Error(codes.Unauthenticated, "ext_proc: caller key missing or wrong")
		}
		return handler(srv, ss)
	}
}

func callerKeyOK(ctx context.Context, key string) bool {
	// ValueFromIncomingContext, unlike FromIncomingContext, does not copy
	// the stream's whole metadata: this runs on every agent request.
	got := metadata.ValueFromIncomingContext(ctx, extprocapi.MetadataCallerKey)
	return key != "" && len(got) == 1 && subtle.ConstantTimeCompare([]byte(got[0]), []byte(key)) == 1
}
