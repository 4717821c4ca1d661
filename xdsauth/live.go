package xdsauth

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// liveStreams are the streams open with a token, so that revoking the
// token ends them too: a sidecar whose token was rotated must not go on
// receiving credential values on a stream it opened before.
type liveStreams struct {
	mu      sync.Mutex
	next    uint64
	streams map[uint64]*revocableStream
}

// serve runs handler on ss until it returns or the stream's token is
// revoked. A revoked stream ends with Unauthenticated; its handler may run
// on a little (its blocked Recv fails once the stream is finished), but can
// send nothing more.
func (l *liveStreams) serve(ctx context.Context, token string, ss grpc.ServerStream, handler func(grpc.ServerStream) error) error {
	id, _ := IdentityFromContext(ctx)
	rs := &revocableStream{ServerStream: ss, ctx: ctx, id: id, token: token, revoked: make(chan struct{})}
	l.mu.Lock()
	if l.streams == nil {
		l.streams = map[uint64]*revocableStream{}
	}
	key := l.next
	l.next++
	l.streams[key] = rs
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.streams, key)
		l.mu.Unlock()
	}()

	done := make(chan error, 1)
	go func() { done <- handler(rs) }()
	select {
	case err := <-done:
		return err
	case <-rs.revoked:
		// Once no send is under way, none may follow: the stream is about
		// to be finished under go-control-plane's goroutines.
		rs.sendMu.Lock()
		rs.isRevoked = true
		rs.sendMu.Unlock()
		return status.Error(codes.Unauthenticated, errRevoked.Error())
	}
}

// snapshot lists the open streams.
func (l *liveStreams) snapshot() []*revocableStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*revocableStream, 0, len(l.streams))
	for _, s := range l.streams {
		out = append(out, s)
	}
	return out
}

// EndRevoked ends every open stream whose token is no longer the one on
// file for its node and role, and returns how many it ended. Call it after
// tokens are rotated or removed (by this process or by `egressgate token`).
func (a *Authority) EndRevoked() int {
	ended := 0
	for _, s := range a.live.snapshot() {
		if !a.registered(s.id, s.token) && s.revoke() {
			ended++
		}
	}
	return ended
}

// revocableStream refuses to send once revoked, and holds sendMu across
// each send, so that the interceptor can make sure no send is under way
// and none follows before it returns while go-control-plane's goroutines
// are still winding down.
type revocableStream struct {
	grpc.ServerStream
	ctx   context.Context
	id    Identity
	token string

	sendMu     sync.Mutex
	isRevoked  bool
	revoked    chan struct{}
	revokeOnce sync.Once
}

func (s *revocableStream) Context() context.Context { return s.ctx }

func (s *revocableStream) SendMsg(m any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.isRevoked {
		return status.Error(codes.Unauthenticated, errRevoked.Error())
	}
	return s.ServerStream.SendMsg(m)
}

// revoke reports whether this call revoked the stream. It never blocks,
// even behind a send stuck on a client that stopped reading.
func (s *revocableStream) revoke() bool {
	first := false
	s.revokeOnce.Do(func() {
		close(s.revoked)
		first = true
	})
	return first
}
