// Package xdsauth authenticates the xDS streams of egressgate's control
// plane (DESIGN security invariant 6). Each bottle gets a JWT signed by a
// key kept in the state dir, subject = the bottle's node id. Its Envoy and
// ext_proc sidecar send it as gRPC metadata; the server refuses a stream
// without a valid token, and a stream whose node id differs from the
// token's subject, so one bottle can never read another bottle's routes or
// credential slots. The agent itself is never given a token.
package xdsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"

	"github.com/egressgate/egressgate/internal/securefile"
)

// keyFile is the signing key's name inside the state dir. Removing it
// revokes every token minted so far: the next LoadOrCreateKey creates a
// new key, and EnsureToken re-mints each bottle's token.
const keyFile = "xds-signing-key.pem"

// Authority mints and verifies xDS tokens with one ES256 signing key, and
// keeps track of the streams opened with them so that a revoked token's
// streams can be ended (EndRevoked). It is safe for concurrent use.
type Authority struct {
	key      *ecdsa.PrivateKey
	keyPath  string
	stateDir string
	live     liveStreams
	// verified remembers the claims of token files already verified, by
	// path: a thousand bottles re-read their token files on every reload,
	// and an ES256 check each time was most of a reload's CPU.
	verifiedMu sync.Mutex
	verified   map[string]verifiedToken
}

type verifiedToken struct {
	token  string
	claims *claims
}

// LoadOrCreateKey loads STATE_DIR/xds-signing-key.pem, creating the state
// dir (0700) and the key (PKCS#8, 0600) on first use. A key file that
// group or others can read, or that does not hold a P-256 key, is an error
// naming the file, never a silent re-creation: a new key would invalidate
// every token already handed to a running bottle.
//
// Loading and creating run under the state dir's lock, the one
// pki.LoadOrCreateCA takes too, so processes starting together on a fresh
// dir sign with one key.
func LoadOrCreateKey(stateDir string) (*Authority, error) {
	unlock, err := securefile.LockStateDir(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	defer unlock()
	path := filepath.Join(stateDir, keyFile)
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return &Authority{key: key, keyPath: path, stateDir: stateDir}, nil
}

// KeyPath returns the path of the signing key file.
func (a *Authority) KeyPath() string { return a.keyPath }

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := readPrivate(path, "the xDS signing key may have leaked: remove it to revoke every bottle's token")
	if err != nil {
		return nil, err
	}
	return securefile.DecodeECKey(path, data)
}

// createKey creates the key file without ever replacing one. Under the
// state dir's lock the file is always new; should a process that skips
// the lock have created it meanwhile, its key is adopted rather than
// signing with a key that is no longer on disk.
func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate xDS signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal xDS signing key: %w", err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	created, err := securefile.CreateExclusive(path, pemData, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !created {
		return readKey(path)
	}
	return key, nil
}

// readPrivate is securefile.ReadPrivate, with leak advice for the operator
// when the file's mode is too wide: for a signing key or a token, chmod
// alone does not undo a copy already taken.
func readPrivate(path, leak string) ([]byte, error) {
	data, err := securefile.ReadPrivate(path)
	if me, ok := errors.AsType[*securefile.ModeError](err); ok {
		return nil, &securefile.ModeError{Path: me.Path, Perm: me.Perm, Leak: leak}
	}
	return data, err
}
