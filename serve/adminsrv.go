package serve

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/internal/buildinfo"
)

// observability is the admin endpoint's state: a registry of its own (no
// global registry) and the readiness flag flipped once the first
// configuration is acknowledged.
type observability struct {
	registry *prometheus.Registry
	ready    atomic.Bool
}

func newObservability() *observability {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admin.RegisterBuildInfo(reg, buildinfo.Read())
	return &observability{registry: reg}
}

// serveAdmin starts the admin endpoint when addr is set and returns the
// address it bound ("" when disabled).
func (o *observability) serveAdmin(ctx context.Context, addr string, status func() admin.Status, log *slog.Logger) (string, error) {
	if addr == "" {
		return "", nil
	}
	h := admin.Handler(status, o.ready.Load, o.registry)
	return admin.Serve(ctx, addr, h, log)
}
