package xdsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
)

const (
	tokensDir = "tokens"
	// tokenTTL is long because a bottle's Envoy reads its token once, from
	// its bootstrap, and cannot pick up a new one without a restart.
	tokenTTL = 365 * 24 * time.Hour
	// renewBefore re-mints a token this long before it expires, so a
	// bottle (re)started now keeps a valid token for at least a month.
	renewBefore = 30 * 24 * time.Hour
)

// EnsureToken returns node's token and the file holding it,
// STATE_DIR/tokens/<node>.jwt (dir 0700, file 0600). The file's token is
// reused while it verifies, names node, and has more than 30 days left;
// otherwise a new one valid for 365 days replaces it atomically. Reuse
// keeps a restarted control plane from invalidating the token a running
// Envoy already holds.
func (a *Authority) EnsureToken(stateDir, node string, now time.Time) (token, path string, err error) {
	if !nodePattern.MatchString(node) {
		return "", "", fmt.Errorf("xds token: node id %.64q must match [a-z0-9-]+", node)
	}
	dir := filepath.Join(stateDir, tokensDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("xds token dir: %w", err)
	}
	path = filepath.Join(dir, node+".jwt")
	token, err = a.reusableToken(path, node, now)
	if err != nil || token != "" {
		return token, path, err
	}
	token, err = a.Mint(node, now, tokenTTL)
	if err != nil {
		return "", "", err
	}
	// No trailing newline: a reader that forgets to trim would otherwise
	// send a newline in gRPC metadata, which is not allowed there.
	if err := securefile.WriteAtomic(path, []byte(token), 0o600); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	return token, path, nil
}

// reusableToken returns the token in path if it may be kept, "" if a new
// one should be minted (no file, another key, expiring soon), or an error
// for a file that must not be silently replaced.
func (a *Authority) reusableToken(path, node string, now time.Time) (string, error) {
	// A token readable by others may have been copied. Replacing the file
	// would not revoke the copy (tokens are valid until they expire), so
	// the operator has to decide.
	data, err := readPrivate(path, fmt.Sprintf("the token may have leaked: remove %s to revoke every bottle's token", a.keyPath))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	claims, err := a.parse(token, now)
	if err != nil || claims.Subject != node || claims.ExpiresAt.Sub(now) <= renewBefore {
		return "", nil
	}
	return token, nil
}
