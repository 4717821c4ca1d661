package serve

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/audit"
)

// AuditOptions say where the audit trail goes.
type AuditOptions struct {
	// File is the audit log's path: "" is STATE_DIR/audit.log, "-" none.
	File string
	// Stdout also writes every record to standard output.
	Stdout bool
}

// file is where the audit log goes for the state dir.
func (o AuditOptions) file(stateDir string) string {
	switch o.File {
	case "":
		return filepath.Join(stateDir, audit.FileName)
	case "-":
		return ""
	}
	return o.File
}

// startAudit starts the audit trail of every bottle served: the receiver
// Envoy streams its audit log to, and the sink writing it, which counts
// decisions and drops in metrics and stops with ctx.
func startAudit(ctx context.Context, c *Common, metrics *admin.Metrics, log *slog.Logger) (*audit.Receiver, *audit.Sink) {
	so := audit.Options{File: c.Audit.file(c.StateDir), Logger: log}
	if c.Audit.Stdout {
		so.Stdout = c.Stdout
	}
	sink := audit.NewSink(ctx, so)
	metrics.AuditDropped(sink.Dropped)
	// An ext_proc outage fails every request: say so, but not thousands
	// of times a second.
	outage := rate.NewLimiter(rate.Every(10*time.Second), 1)
	receiver := audit.NewReceiver(func(r audit.Record) {
		metrics.Request(r)
		sink.Write(r)
		if r.Decision == audit.FailedClosed && outage.Allow() {
			log.Error("ext_proc failed, so requests are refused (fail closed); check the ext_proc server",
				"bottle", r.Bottle, "host", r.Host, "reason", r.Reason)
		}
	})
	if so.File != "" {
		// Debug: start-up says nothing before it succeeds or fails.
		log.Debug("writing the audit trail", "file", so.File)
	}
	return receiver, sink
}
