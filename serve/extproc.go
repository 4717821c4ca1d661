package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extproc"
	"github.com/egressgate/egressgate/internal/buildinfo"
	"github.com/egressgate/egressgate/slotsync"
	"github.com/egressgate/egressgate/slotwire"
	"github.com/egressgate/egressgate/xdsauth"
	"github.com/egressgate/egressgate/xdsserver"
)

// ExtProcOptions configure RunExtProc.
type ExtProcOptions struct {
	Node      string // the bottle name
	XDS       string // the control plane's xDS address
	TokenFile string // the bottle's xDS token, STATE_DIR/tokens/<bottle>.jwt
	// XDSCA is the control CA's certificate, which control's xDS server
	// must present a certificate from (default: control-ca/ca.pem in the
	// state dir holding TokenFile).
	XDSCA  string
	Listen string // default 127.0.0.1:9001
	Admin  string

	Stdout io.Writer
	Logger *slog.Logger
}

// RunExtProc is `egressgate extproc`: the ext_proc server of a split
// deployment, beside the bottle's Envoy. Its slot values, and its DLP
// rules and the bottle's canaries, arrive over xDS from `egressgate
// control`, on the same push path as Envoy's routes; when the control plane
// is away it keeps serving the last ones it received.
func RunExtProc(ctx context.Context, o ExtProcOptions) error {
	def(&o.Listen, "127.0.0.1:9001")
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Node == "" || o.XDS == "" || o.TokenFile == "" {
		return fmt.Errorf("extproc needs --node, --xds and --token-file")
	}
	token := &tokenFile{path: o.TokenFile, log: o.Logger}
	if err := token.reload(); err != nil {
		return err
	}

	obs := newObservability()
	slots := &slotHolder{}
	// The metrics read the server's rejections at scrape time, and the
	// server reports to the metrics: the server is made second, with
	// every hook, and the metrics reach it through ep once it exists.
	var ep *extproc.Server
	metrics := admin.NewMetrics(obs.registry, func() []admin.BottleSlots {
		return []admin.BottleSlots{{Bottle: o.Node, Slots: slots.get(), Facts: rejectionFacts(ep.Rejections())}}
	})
	ep = extproc.New(extproc.Options{
		Logger:     o.Logger.With("component", "extproc"),
		Observe:    metrics.ExtProcDecision,
		Latency:    metrics.ExtProcDecided,
		OnRejected: func(r extproc.Rejection) { metrics.CredentialRejected(o.Node, r.Slot, r.Host) },
	})
	cert := &serverCert{}
	addr, stop, err := serveGRPC(o.Listen, ep.Register, o.Logger,
		append(extProcServerOptions(token.callerKey),
			// TLS only: Envoy verifies this server by the control CA, and the
			// streams carry the agent's headers and the injected credential.
			// The certificate arrives from control with the first slots.
			grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.get})))...)
	if err != nil {
		return fmt.Errorf("ext_proc server: %w", err)
	}
	defer stop()

	xdsCreds, err := xdsClientCreds(o)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.XDS,
		grpc.WithTransportCredentials(xdsCreds),
		// A control plane that vanishes without closing the connection
		// must still be noticed, so the client reconnects when it is back.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(xdsConnectParams()))
	if err != nil {
		return fmt.Errorf("xds client: %w", err)
	}
	defer conn.Close()
	first := make(chan struct{})
	var once sync.Once
	dlpIn := &dlpFeed{to: ep}
	syncErr := make(chan error, 1)
	go func() {
		syncErr <- slotsync.Run(ctx, conn, slotsync.Options{
			Node:         &corev3.Node{Id: o.Node, Cluster: xdsserver.ExtProcCluster},
			Token:        token.forStream,
			Logger:       o.Logger,
			OnServerCert: func(c slotwire.Certificate) { cert.set(c, o.Logger) },
			OnDLP:        func(in slotwire.DLPInputs) { dlpIn.send(in.Rules, in.Canaries) },
			OnSlots: func(s []config.Slot) {
				ep.SetSlots(s)
				slots.set(s)
				once.Do(func() { close(first) })
			},
		})
	}()
	select {
	case <-first:
	case err := <-syncErr:
		return fmt.Errorf("slot sync: %w", err)
	case <-ctx.Done():
		return nil
	}
	status := func() admin.Status {
		return admin.Status{Mode: "extproc", Version: buildinfo.Read().String(), Bottles: []admin.BottleStatus{{Name: o.Node, Slots: admin.SlotStatuses(slots.get(), rejectionFacts(ep.Rejections()), time.Now())}}}
	}
	adminAddr, err := obs.serveAdmin(ctx, o.Admin, status, o.Logger)
	if err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	obs.ready.Store(true)
	fmt.Fprintf(o.Stdout, "egressgate extproc ready: bottle %s, ext_proc %s, xds %s, admin %s\n", o.Node, addr, o.XDS, orNone(adminAddr))
	<-ctx.Done()
	return nil
}

// xdsClientCreds verifies control's xDS server: a certificate from the
// control CA naming the host in --xds. There is no plaintext fallback: the
// stream carries the bottle's credential values.
func xdsClientCreds(o ExtProcOptions) (credentials.TransportCredentials, error) {
	caFile := o.XDSCA
	if caFile == "" {
		caFile = filepath.Join(filepath.Dir(filepath.Dir(o.TokenFile)), "control-ca", "ca.pem")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("control CA (--xds-ca): %w; give the control plane's STATE_DIR/control-ca/ca.pem", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("control CA %s holds no PEM certificate", caFile)
	}
	host, _, err := net.SplitHostPort(o.XDS)
	if err != nil {
		return nil, fmt.Errorf("--xds %s: %w", o.XDS, err)
	}
	return credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}), nil
}

// tokenFile is the sidecar's xDS token, read again for each xDS stream:
// when `egressgate token rotate` revokes the old one, control ends the
// stream, and the reconnect presents the new one. The caller key Envoy
// must present follows the token in use.
type tokenFile struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex
	tok  string
	// key is the caller key derived from tok, kept with it: ext_proc
	// checks it on every stream, one per agent request.
	key string
}

func (t *tokenFile) reload() error {
	raw, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("xds token: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return fmt.Errorf("xds token: %s is empty", t.path)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if token != t.tok {
		t.tok, t.key = token, xdsauth.ExtProcKey(token)
	}
	return nil
}

// forStream re-reads the file and returns the token to present; if the
// file cannot be read now, the last one read.
func (t *tokenFile) forStream() string {
	if err := t.reload(); err != nil {
		t.log.Warn("cannot read the xDS token again; presenting the last one read", "error", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

func (t *tokenFile) callerKey() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.key
}

// xdsConnectParams pace the sidecar's reconnects to the control plane.
// gRPC's default back-off grows to 120s, so slots changed while the
// control plane restarted could arrive minutes after it is back; capped at
// 1s they arrive about as soon as Envoy's routes (whose bootstrap caps its
// xDS back-off at 1s). MinConnectTimeout bounds one attempt at an
// unanswering address; a refused one fails at once anyway.
func xdsConnectParams() grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  100 * time.Millisecond,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   time.Second,
		},
		MinConnectTimeout: 2 * time.Second,
	}
}

// serverCert is the certificate the sidecar's ext_proc server presents,
// as control last sent it.
type serverCert struct {
	mu   sync.Mutex
	pem  []byte
	cert *tls.Certificate
}

func (s *serverCert) set(c slotwire.Certificate, log *slog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Equal(s.pem, c.CertPEM) {
		return
	}
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		// Not a secret in this error: it describes the PEM's shape.
		log.Error("ext_proc server certificate from control does not load; keeping the previous one", "error", err)
		return
	}
	s.pem, s.cert = c.CertPEM, &cert
}

func (s *serverCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return nil, errors.New("ext_proc: no server certificate from control yet")
	}
	return s.cert, nil
}

// slotHolder keeps the last slot set for status and metrics.
type slotHolder struct {
	mu    sync.Mutex
	slots []config.Slot
}

func (h *slotHolder) set(s []config.Slot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.slots = s
}

func (h *slotHolder) get() []config.Slot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.slots
}

// rejectionFacts turns ext_proc's rejections into status facts.
func rejectionFacts(rs map[string]extproc.Rejection) map[string]admin.SlotFacts {
	facts := make(map[string]admin.SlotFacts, len(rs))
	for name, r := range rs {
		facts[name] = admin.SlotFacts{Rejected: &admin.Rejected{Host: r.Host, Status: r.Status, At: r.At}}
	}
	return facts
}
