// Package alsstream reads the streams Envoy's access log service opens:
// egressgate serves two logs over it (the audit trail, and the credential
// log ext_proc learns upstream refusals from), with the same stream rules.
package alsstream

import (
	"errors"
	"io"

	accesslogdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Read hands each HTTP entry of stream to entry, with the log's name,
// until Envoy closes it. Envoy names the log (and its node) on a stream's
// first message only; identify sees that identifier, and an error it
// returns ends the stream with it. A stream Envoy cancels, or one that
// ends with the server, is a clean end.
func Read(stream accesslogv3.AccessLogService_StreamAccessLogsServer,
	identify func(*accesslogv3.StreamAccessLogsMessage_Identifier) error,
	entry func(logName string, e *accesslogdatav3.HTTPAccessLogEntry),
) error {
	var logName string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&accesslogv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			if stream.Context().Err() != nil || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		if id := msg.GetIdentifier(); id != nil {
			if err := identify(id); err != nil {
				return err
			}
			logName = id.GetLogName()
		}
		for _, e := range msg.GetHttpLogs().GetLogEntry() {
			entry(logName, e)
		}
	}
}
