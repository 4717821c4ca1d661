package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server timeouts. The admin address is scraped and polled by tools on the
// host, never by the agent, but a slow or stuck client must still not hold a
// connection (and a goroutine) forever.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	// shutdownTimeout bounds how long a cancelled Serve waits for in-flight
	// requests; every handler here answers in milliseconds, so anything
	// still running after this is stuck and is cut off.
	shutdownTimeout = 3 * time.Second
)

// Handler serves the admin endpoints:
//
//	/healthz  200 "ok" while the process runs (liveness)
//	/readyz   200 "ready" once ready() holds, else 503 "not ready"
//	/metrics  Prometheus exposition of gatherer
//	/status   status() as indented JSON
//
// status and ready are called per request, so they must be cheap and safe
// for concurrent use (an atomic load, not a rebuild).
func Handler(status func() Status, ready func() bool, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready() {
			writeText(w, http.StatusOK, "ready")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, status())
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}

// writeStatus marshals before writing the header, so a marshalling failure
// is a clean 500 rather than a 200 with half a document.
func writeStatus(w http.ResponseWriter, st Status) {
	body, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		writeText(w, http.StatusInternalServerError, "cannot encode status: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// Serve listens on addr (port 0 picks a free port) and serves h in the
// background until ctx ends, then shuts down gracefully within a few
// seconds. It returns once listening, with the bound address, so callers
// can print or pass on the real port; a listen failure is returned, later
// serve errors are logged. A nil log discards them.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bound := ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "addr", bound, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown(srv, bound, log)
	}()
	return bound, nil
}

// shutdown stops srv, waiting shutdownTimeout for in-flight requests before
// closing what remains. ctx is already done here, so the wait gets a fresh
// context of its own.
func shutdown(srv *http.Server, addr string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("admin server shutdown cut short", "addr", addr, "err", err)
		_ = srv.Close()
	}
}
