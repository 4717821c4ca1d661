package xdsauth

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// identityKey is the context key under which an authenticated Identity
// travels.
type identityKey struct{}

// NodeFromContext returns the node id the stream's token was minted for,
// as set by StreamInterceptor or UnaryInterceptor.
func NodeFromContext(ctx context.Context) (string, bool) {
	id, ok := IdentityFromContext(ctx)
	return id.Node, ok
}

// IdentityFromContext returns whom the stream's token speaks for.
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok && id.Node != ""
}

// StreamInterceptor refuses, with codes.Unauthenticated, every stream that
// does not carry a valid token, before any handler runs. An accepted
// stream's context carries the token's node (NodeFromContext). Install it
// on the xDS gRPC server only: Envoy's ext_proc filter sends no token.
//
// The audit log stream (AuditLogMethod) is the one exception: it presents
// a bottle's audit key instead (AuditKey), which can write that bottle's
// audit records and read nothing.
func (a *Authority) StreamInterceptor(now func() time.Time) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod == AuditLogMethod {
			ctx, err := a.authenticateAudit(ss.Context())
			if err != nil {
				return err
			}
			return handler(srv, &authenticatedStream{ServerStream: ss, ctx: ctx})
		}
		ctx, token, err := a.authenticate(ss.Context(), now())
		if err != nil {
			return err
		}
		return a.live.serve(ctx, token, ss, func(s grpc.ServerStream) error { return handler(srv, s) })
	}
}

// UnaryInterceptor is StreamInterceptor for unary calls. The xDS server
// registers ADS only (xdsserver.Server.Register), which has no unary method, so
// today this refuses calls that would fail anyway. It is installed as
// defence in depth: should a per-type service with a unary Fetch (which
// returns a node's resources) ever be registered, it is not left open.
func (a *Authority) UnaryInterceptor(now func() time.Time) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, _, err := a.authenticate(ctx, now())
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

type authenticatedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authenticatedStream) Context() context.Context { return s.ctx }

// authenticate accepts a token that verifies and is still the one on file
// for its node and role (so rotated and removed tokens are refused).
func (a *Authority) authenticate(ctx context.Context, now time.Time) (context.Context, string, error) {
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, "", status.Error(codes.Unauthenticated, err.Error())
	}
	id, err := a.Verify(token, now)
	if err != nil {
		return nil, "", status.Error(codes.Unauthenticated, err.Error())
	}
	if !a.registered(id, token) {
		return nil, "", status.Error(codes.Unauthenticated, errRevoked.Error())
	}
	return context.WithValue(ctx, identityKey{}, id), token, nil
}

var errRevoked = errors.New("xds token rejected: revoked (rotated, or its bottle removed); use the bottle's current token from the state dir")

// bearerToken extracts the token from the single "authorization: Bearer
// <jwt>" metadata entry. Its errors describe the shape only, never the
// value, which may be a real token sent in the wrong form.
func bearerToken(ctx context.Context) (string, error) {
	values := metadata.ValueFromIncomingContext(ctx, MetadataKey)
	switch len(values) {
	case 0:
		return "", errors.New("xds: no authorization metadata; every xDS stream needs the bottle's token")
	case 1:
	default:
		// Two values could make a proxy and this server disagree about
		// which one was checked.
		return "", errors.New("xds: more than one authorization metadata value")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	// RFC 9110: the auth scheme is case-insensitive.
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errors.New(`xds: authorization metadata is not "Bearer <token>"`)
	}
	return token, nil
}

// PerRPCCredentials makes a Go gRPC client (the ext_proc sidecar in split
// mode) send token the way Envoy does, on every stream it opens.
func PerRPCCredentials(token string) credentials.PerRPCCredentials {
	return bearer{token: token}
}

type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{MetadataKey: "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false because egressgate's xDS runs over
// plaintext gRPC, where Envoy sends the same token in the clear too. That
// is only sound on a path the agent cannot observe (host loopback, or a
// network the agent's container is not attached to).
func (bearer) RequireTransportSecurity() bool { return false }

// String and GoString keep the token out of any log that prints the
// credentials value.
func (bearer) String() string   { return "Bearer <redacted>" }
func (bearer) GoString() string { return "Bearer <redacted>" }
