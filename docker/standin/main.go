// Command standin is the demo upstream of the compose stack and the
// container tests: an HTTPS server for the given host names, with a CA of
// its own written to --ca-out for the egress to trust. It answers every
// request with what it received, reporting the Authorization header only
// as a SHA-256, so that even a demo never hands the host's token to the
// agent.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve HTTPS on")
	hosts := flag.String("hosts", "demo.example.test", "comma-separated host names the certificate covers")
	caOut := flag.String("ca-out", "", "where to write the CA certificate the egress must trust")
	flag.Parse()

	cert, caPEM, err := mint(strings.Split(*hosts, ","))
	if err != nil {
		return err
	}
	if *caOut != "" {
		if err := securefile.WriteAtomic(*caOut, caPEM, 0o644); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           http.HandlerFunc(echo),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	slog.Info("standin serving", "listen", *listen, "hosts", *hosts)
	if err := srv.ListenAndServeTLS("", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// seen is what the stand-in reports of a request.
type seen struct {
	Host                string `json:"host"`
	Method              string `json:"method"`
	Path                string `json:"path"`
	AuthorizationSHA256 string `json:"authorization_sha256,omitempty"`
	ProxyAuthorization  bool   `json:"proxy_authorization_present"`
	APIKey              bool   `json:"x_api_key_present"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	s := seen{Host: r.Host, Method: r.Method, Path: r.URL.Path,
		ProxyAuthorization: r.Header.Get("Proxy-Authorization") != "", APIKey: r.Header.Get("X-Api-Key") != ""}
	if a := r.Header.Get("Authorization"); a != "" {
		sum := sha256.Sum256([]byte(a))
		s.AuthorizationSHA256 = hex.EncodeToString(sum[:])
	}
	slog.Info("request", "host", s.Host, "method", s.Method, "path", s.Path, "authorization_sha256", s.AuthorizationSHA256)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s)
}

// mint makes a CA and a leaf certificate for hosts.
func mint(hosts []string) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "standin CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, caPEM, nil
}
