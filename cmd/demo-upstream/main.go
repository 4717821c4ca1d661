// Command demo-upstream is the quick start's stand-in for a real API: an
// HTTPS server on loopback that answers every request with the request it
// received. Behind the egress it shows, without internet, what the
// upstream gets: the host's token in place of the agent's.
//
// It serves a certificate for --host from its own CA (kept in --dir) and
// writes --dir/roots.pem, the system roots plus that CA, for egressgate's
// --system-ca: Envoy then verifies the stand-in like any public host.
// roots.pem appears only once the server listens, so a script can wait for
// it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
	"github.com/egressgate/egressgate/pki"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9443", "address to serve HTTPS on")
	host := flag.String("host", "demo.egressgate.test", "host name the certificate is for")
	dir := flag.String("dir", ".egressgate/demo-upstream", "directory for the stand-in's CA and roots.pem")
	systemRoots := flag.String("system-ca", "/etc/ssl/certs/ca-certificates.crt", "system CA bundle to copy into roots.pem (skipped when missing)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, *listen, *host, *dir, *systemRoots, log); err != nil {
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, host, dir, systemRoots string, log *slog.Logger) error {
	ca, err := pki.LoadOrCreateCA(dir, time.Now())
	if err != nil {
		return err
	}
	leaf, err := ca.Leaf(host, time.Now())
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("%w (is another make run still running?)", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(echo(host)),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	roots := ca.CertPEM()
	if system, err := os.ReadFile(systemRoots); err == nil {
		roots = append(append(system, '\n'), roots...)
	}
	if err := securefile.WriteAtomic(filepath.Join(dir, "roots.pem"), roots, 0o644); err != nil {
		return err
	}
	log.Info("demo upstream listening", "host", host, "addr", lis.Addr().String())
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ServeTLS(lis, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// echo answers with the request line and headers as received, sorted so
// the credential headers are easy to find.
func echo(host string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		var b strings.Builder
		fmt.Fprintf(&b, "%s (egressgate's local demo upstream) received:\n  %s %s\n", host, r.Method, r.URL.RequestURI())
		for _, name := range slices.Sorted(maps.Keys(r.Header)) {
			for _, v := range r.Header[name] {
				fmt.Fprintf(&b, "  %s: %s\n", name, v)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, b.String())
	}
}
