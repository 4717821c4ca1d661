package xdsauth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// TokenPath is where node's token for role is kept:
// STATE_DIR/tokens/<node>.jwt for the ext_proc sidecar (the file its
// --token-file names) and STATE_DIR/tokens/<node>.envoy.jwt for Envoy. A
// node id has no dot, so no node's file can be mistaken for another's.
//
// The file is also the token's registration: a token is accepted only
// while it is the one in its file (Authenticate), so replacing the file
// revokes the old token and removing it revokes the role.
func TokenPath(stateDir, node string, role Role) string {
	name := node + ".jwt"
	if role == RoleEnvoy {
		name = node + ".envoy.jwt"
	}
	return filepath.Join(stateDir, tokensDir, name)
}

// EnsureToken returns node's token for role and the file holding it (dir
// 0700, file 0600). The file's token is reused while it verifies, names
// node and role, and has more than 30 days left; otherwise a new one valid
// for 365 days replaces it atomically. Reuse keeps a restarted control
// plane from invalidating the token a running Envoy already holds.
func (a *Authority) EnsureToken(node string, role Role, now time.Time) (token, path string, err error) {
	if !nodePattern.MatchString(node) {
		return "", "", fmt.Errorf("xds token: node id %.64q must match [a-z0-9-]+", node)
	}
	path = TokenPath(a.stateDir, node, role)
	token, err = a.reusableToken(path, Identity{Node: node, Role: role}, now)
	if err != nil || token != "" {
		return token, path, err
	}
	return a.replaceToken(node, role, now)
}

// Rotate replaces every token of node with a new one, revoking the old
// ones: a stream already open with them is ended by the next EndRevoked,
// and a new one is refused at once.
func (a *Authority) Rotate(node string, now time.Time) error {
	if !nodePattern.MatchString(node) {
		return fmt.Errorf("xds token: node id %.64q must match [a-z0-9-]+", node)
	}
	for _, role := range []Role{RoleEnvoy, RoleExtProc} {
		if _, _, err := a.replaceToken(node, role, now); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTokens revokes every token of node by removing its files.
func (a *Authority) RemoveTokens(node string) error {
	if !nodePattern.MatchString(node) {
		return fmt.Errorf("xds token: node id %.64q must match [a-z0-9-]+", node)
	}
	var errs []error
	for _, role := range []Role{RoleEnvoy, RoleExtProc} {
		if err := os.Remove(TokenPath(a.stateDir, node, role)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Authority) replaceToken(node string, role Role, now time.Time) (string, string, error) {
	dir := filepath.Join(a.stateDir, tokensDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("xds token dir: %w", err)
	}
	token, err := a.Mint(node, role, now, tokenTTL)
	if err != nil {
		return "", "", err
	}
	path := TokenPath(a.stateDir, node, role)
	// No trailing newline: a reader that forgets to trim would otherwise
	// send a newline in gRPC metadata, which is not allowed there.
	if err := securefile.WriteAtomic(path, []byte(token), 0o600); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	return token, path, nil
}

// reusableToken returns the token in path if it may be kept, "" if a new
// one should be minted (no file, another key, another role, expiring
// soon), or an error for a file that must not be silently replaced.
func (a *Authority) reusableToken(path string, want Identity, now time.Time) (string, error) {
	// A token readable by others may have been copied. Replacing the file
	// would revoke the copy, but the operator should know it happened.
	data, err := readPrivate(path, fmt.Sprintf("the token may have leaked: run `egressgate token rotate %s` to revoke it", want.Node))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	c, err := a.parseFile(path, token, now)
	if err != nil || c.Subject != want.Node || c.Role != want.Role || c.ExpiresAt.Sub(now) <= renewBefore {
		return "", nil
	}
	return token, nil
}

// parseFile is parse for the token read from path, verified once per
// distinct value: the same bytes verify the same way every time, and
// only their expiry needs judging again.
func (a *Authority) parseFile(path, token string, now time.Time) (*claims, error) {
	a.verifiedMu.Lock()
	v, ok := a.verified[path]
	a.verifiedMu.Unlock()
	if ok && v.token == token {
		if !now.Before(v.claims.ExpiresAt.Time) {
			return nil, fmt.Errorf("xds token rejected: %w", jwt.ErrTokenExpired)
		}
		return v.claims, nil
	}
	c, err := a.parse(token, now)
	if err != nil {
		return nil, err
	}
	a.verifiedMu.Lock()
	if a.verified == nil {
		a.verified = map[string]verifiedToken{}
	}
	a.verified[path] = verifiedToken{token: token, claims: c}
	a.verifiedMu.Unlock()
	return c, nil
}

// registered reports whether token is the one on file for id: the check
// that makes rotation and removal revoke. The file is read each time, so a
// rotation by another process (`egressgate token rotate`) counts at once.
func (a *Authority) registered(id Identity, token string) bool {
	data, err := os.ReadFile(TokenPath(a.stateDir, id.Node, id.Role))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(string(data))), []byte(token)) == 1
}
