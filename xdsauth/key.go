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
	"os"
	"path/filepath"
)

// keyFile is the signing key's name inside the state dir. Removing it
// revokes every token minted so far: the next LoadOrCreateKey creates a
// new key, and EnsureToken re-mints each bottle's token.
const keyFile = "xds-signing-key.pem"

// Authority mints and verifies xDS tokens with one ES256 signing key. It
// holds no mutable state and is safe for concurrent use.
type Authority struct {
	key     *ecdsa.PrivateKey
	keyPath string
}

// LoadOrCreateKey loads STATE_DIR/xds-signing-key.pem, creating the state
// dir (0700) and the key (PKCS#8, 0600) on first use. A key file that
// group or others can read, or that does not hold a P-256 key, is an error
// naming the file, never a silent re-creation: a new key would invalidate
// every token already handed to a running bottle.
func LoadOrCreateKey(stateDir string) (*Authority, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(stateDir, keyFile)
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return &Authority{key: key, keyPath: path}, nil
}

// KeyPath returns the path of the signing key file.
func (a *Authority) KeyPath() string { return a.keyPath }

func readKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return nil, fmt.Errorf("%s: mode %#o is wider than 0600; the xDS signing key may have leaked: remove it to revoke every bottle's token, or run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM PRIVATE KEY (PKCS#8) block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an ECDSA P-256 key (ES256 needs one)", path)
	}
	return key, nil
}

// createKey writes a new key to a temporary file and hard-links it into
// place. Unlike a rename, a link never replaces an existing file, so when
// two processes sharing a state dir start at once (control and serve, say)
// the loser adopts the winner's key instead of signing with a key that is
// no longer on disk.
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
	err = writeTempThen(path, pemData, 0o600, os.Link)
	if errors.Is(err, fs.ErrExist) {
		return readKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// writeFileAtomic replaces path so that a reader sees the old content or
// the new, never a half-written file.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeTempThen(path, data, perm, os.Rename)
}

// writeTempThen writes data to a synced temporary file beside path and
// moves it into place with place (os.Rename or os.Link). The file gets
// perm before any byte is written, so a secret is never readable by
// others, not even briefly.
func writeTempThen(path string, data []byte, perm fs.FileMode, place func(tmp, path string) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename a no-op; after a link, drops the extra name
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return place(tmp, path)
}
