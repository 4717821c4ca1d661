package audit

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/egressgate/egressgate/xdsauth"
)

// TestReceiver: a stream opened with a bottle's audit key yields records
// of that bottle, whatever the entries' tags claim; a stream naming
// another node, or without the key, yields nothing.
func TestReceiver(t *testing.T) {
	auth, err := xdsauth.LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	var mu sync.Mutex
	var got []Record
	rc := NewReceiver(func(r Record) { mu.Lock(); got = append(got, r); mu.Unlock() })
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(grpc.StreamInterceptor(auth.StreamInterceptor(time.Now)))
	rc.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	send := func(node, key, idNode string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, xdsauth.MetadataAuditNode, node, xdsauth.MetadataAuditKey, key)
		stream, err := accesslogv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
		if err != nil {
			return err
		}
		e := entry{listener: ListenerProxy, method: corev3.RequestMethod_CONNECT, authority: "evil.test:443", route: "refuse/connect", details: "direct_response", status: 403}.proto()
		e.CommonProperties.CustomTags[TagBottle] = "someone-else"
		if err := stream.Send(&accesslogv3.StreamAccessLogsMessage{
			Identifier: &accesslogv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: idNode}, LogName: LogName},
			LogEntries: &accesslogv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &accesslogv3.StreamAccessLogsMessage_HTTPAccessLogEntries{
				LogEntry: []*accesslogdatav3.HTTPAccessLogEntry{e}}},
		}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		// A Send that meets a stream the server already refused returns
		// io.EOF; the refusal's status comes with the receive.
		_, err = stream.CloseAndRecv()
		return err
	}

	require.NoError(t, send("demo", auth.AuditKey("demo"), "demo"))
	require.Len(t, got, 1)
	assert.Equal(t, "demo", got[0].Bottle, "the authenticated bottle, not the entry's tag")
	assert.Equal(t, Refused, got[0].Decision)

	assert.Equal(t, codes.PermissionDenied, status.Code(send("demo", auth.AuditKey("demo"), "other")))
	assert.Equal(t, codes.Unauthenticated, status.Code(send("demo", "wrong-key", "demo")))
	assert.Equal(t, codes.Unauthenticated, status.Code(send("other", auth.AuditKey("demo"), "other")))
	assert.Len(t, got, 1, "nothing recorded from refused streams")
}
