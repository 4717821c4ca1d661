// Package pki keeps the bottle CA in the state directory and mints the leaf
// certificates Envoy presents when it terminates TLS for an intercepted host.
//
// The agent trusts STATE_DIR/ca.pem, so the CA must survive restarts: it is
// created once and reused, and anything odd about the files on disk (a key
// readable by others, a key that does not match the certificate) is an
// error rather than a silent re-creation that would break the agent's trust.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
)

const (
	certFile = "ca.pem"
	keyFile  = "ca-key.pem"

	caCommonName        = "egressgate bottle CA"
	controlCACommonName = "egressgate control CA"
	// controlCADir holds the control CA inside the state dir.
	controlCADir = "control-ca"
	caValidity   = 10 * 365 * 24 * time.Hour
	// backdate absorbs clock skew between the host and the agent's container.
	backdate = time.Hour
)

// CA is the bottle CA: its certificate, its key, and the leaves minted so
// far. It is safe for concurrent use.
type CA struct {
	certPath string
	certPEM  []byte
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]Leaf // by lower-cased host
}

// LoadOrCreateCA loads the CA from dir/ca.pem and dir/ca-key.pem, creating
// dir (0700) and both files on first use.
//
// The check-then-create runs under the state dir's lock, so processes
// starting together on a fresh dir (serve and control, say) agree on one
// CA: the first creates both files, the others load them.
func LoadOrCreateCA(dir string, now time.Time) (*CA, error) {
	return loadOrCreate(dir, dir, caCommonName, now)
}

// LoadOrCreateControlCA loads or creates the control CA, in
// STATE_DIR/control-ca/: it signs the certificates of egressgate's own
// gRPC links (control's xDS server, each ext_proc sidecar), which Envoy and
// the sidecars verify. It is kept apart from the bottle CA, which agents
// trust: nothing an agent trusts can vouch for the control plane.
func LoadOrCreateControlCA(stateDir string, now time.Time) (*CA, error) {
	return loadOrCreate(stateDir, filepath.Join(stateDir, controlCADir), controlCACommonName, now)
}

func loadOrCreate(stateDir, dir, commonName string, now time.Time) (*CA, error) {
	unlock, err := securefile.LockStateDir(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	defer unlock()
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certOK && keyOK:
		return loadCA(certPath, keyPath, now)
	case !certOK && !keyOK:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		return createCA(certPath, keyPath, commonName, now)
	case certOK:
		return nil, fmt.Errorf("%s: missing, but %s exists; remove both to create a new CA", keyPath, certPath)
	default:
		return nil, fmt.Errorf("%s: missing, but %s exists; remove both to create a new CA", certPath, keyPath)
	}
}

// CertPEM returns the CA certificate in PEM form, as written to ca.pem.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// CertPath returns the path of ca.pem, the file the agent trusts.
func (c *CA) CertPath() string { return c.certPath }

// NotAfter is when the CA itself expires; after it, every agent's trust in
// ca.pem is worthless and a new CA must be handed out.
func (c *CA) NotAfter() time.Time { return c.cert.NotAfter }

func newCA(certPath string, certPEM []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) *CA {
	return &CA{certPath: certPath, certPEM: certPEM, cert: cert, key: key, leaves: map[string]Leaf{}}
}

func createCA(certPath, keyPath, commonName string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	// SerialNumber is left nil: CreateCertificate then draws a random
	// RFC 5280 serial.
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// The CA signs leaves only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal CA key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	created, err := writeNewCA(certPath, keyPath, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if !created {
		// Under the state dir's lock only a process that skips the lock
		// can have written a file meanwhile. Load (and check) its files
		// rather than run with a key that is not on disk.
		return loadCA(certPath, keyPath, now)
	}
	return newCA(certPath, certPEM, cert, key), nil
}

// writeNewCA writes the key, then the certificate: a crash between the two
// leaves a key without a certificate, which LoadOrCreateCA reports instead
// of trusting. Neither write replaces an existing file; created is false if
// either file was already there.
func writeNewCA(certPath, keyPath string, certPEM, keyPEM []byte) (created bool, err error) {
	created, err = securefile.CreateExclusive(keyPath, keyPEM, 0o600)
	if err != nil || !created {
		return created, err
	}
	return securefile.CreateExclusive(certPath, certPEM, 0o644)
}

func loadCA(certPath, keyPath string, now time.Time) (*CA, error) {
	certPEM, cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s: key does not match the certificate in %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certPath)
	}
	if !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("%s: CA expired at %s; remove %s and %s to create a new one (agents must then trust the new ca.pem)",
			certPath, cert.NotAfter.UTC().Format(time.RFC3339), certPath, keyPath)
	}
	return newCA(certPath, certPEM, cert, key), nil
}

func readCert(path string) ([]byte, *x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, cert, nil
}

// readKey refuses a key file that group or others can access: the CA key
// lets whoever holds it impersonate any host to the agent.
func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := securefile.ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	return securefile.DecodeECKey(path, data)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}
