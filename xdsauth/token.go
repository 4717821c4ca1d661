package xdsauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// Audience names the xDS server as the token's only consumer, so a
	// token minted for another egressgate service cannot be replayed here.
	Audience = "egressgate-xds"
	// MetadataKey is the gRPC metadata key carrying "Bearer <jwt>".
	MetadataKey = "authorization"

	issuer = "egressgate"
	// maxTokenLen bounds what Verify parses. Our tokens are about 300
	// bytes; anything far larger is not ours and not worth decoding.
	maxTokenLen = 4096
)

// Role is what a token lets its holder be. A bottle has one token per
// role: its Envoy's, which fetches listeners, routes, clusters and leaf
// certificates, and its ext_proc sidecar's, which fetches the bottle's
// credential slots and nothing else. Neither can act as the other, so the
// token in Envoy's bootstrap yields no credential value.
type Role string

const (
	RoleEnvoy   Role = "envoy"
	RoleExtProc Role = "extproc"
	// roleAudit marks a stream opened with an audit key (AuditKey); no
	// token carries it.
	roleAudit Role = "audit"
)

// ExtProcCluster is the node cluster an ext_proc sidecar presents. The
// snapshot cache keys a node by it (xdsserver.NodeHash), so it is bound to the
// role: only an ext_proc token may present it, and an ext_proc token may
// present nothing else.
const ExtProcCluster = "egressgate-extproc"

func (r Role) valid() bool { return r == RoleEnvoy || r == RoleExtProc }

// Identity is who an accepted token speaks for.
type Identity struct {
	Node string
	Role Role
}

// claims are a token's: the registered ones plus its role.
type claims struct {
	jwt.RegisteredClaims
	Role Role `json:"role"`
}

// nodePattern is the manifest's rule for a bottle name. Node ids become
// token file names, so it also keeps paths inside STATE_DIR/tokens.
var nodePattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// Mint returns an ES256 token for node in role, valid from now for ttl.
// Each token has an id of its own, so two minted in the same second still
// differ and a rotated token never equals the one it replaces.
func (a *Authority) Mint(node string, role Role, now time.Time, ttl time.Duration) (string, error) {
	if !nodePattern.MatchString(node) {
		return "", fmt.Errorf("mint xDS token: node id %.64q must match [a-z0-9-]+", node)
	}
	if !role.valid() {
		return "", fmt.Errorf("mint xDS token for %s: unknown role %.32q", node, role)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint xDS token for %s: ttl %s is not positive", node, ttl)
	}
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("mint xDS token for %s: %w", node, err)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   node,
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        hex.EncodeToString(id),
		},
		Role: role,
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("mint xDS token for %s: %w", node, err)
	}
	return token, nil
}

// Verify checks token's signature (ES256 with this authority's key, no
// other algorithm), audience, issuer, expiry at now and role, and returns
// whom it was minted for. It does not check that the token is still the
// current one of its node and role (Authenticate does). Errors never quote
// the token.
func (a *Authority) Verify(token string, now time.Time) (Identity, error) {
	c, err := a.parse(token, now)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Node: c.Subject, Role: c.Role}, nil
}

func (a *Authority) parse(token string, now time.Time) (*claims, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("xds token rejected: longer than %d bytes", maxTokenLen)
	}
	parser := jwt.NewParser(
		// Pinning the algorithm is what stops "alg: none" and HS256 tokens
		// keyed with our public key (the classic algorithm confusion).
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithAudience(Audience),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		// Strict base64 leaves one encoding per token, so a token cannot be
		// altered into a second string that still verifies.
		jwt.WithStrictDecoding(),
	)
	c := &claims{}
	_, err := parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodES256 {
			return nil, jwt.ErrTokenUnverifiable
		}
		return &a.key.PublicKey, nil
	})
	if err != nil {
		return nil, rejection(err)
	}
	if !nodePattern.MatchString(c.Subject) {
		return nil, errors.New("xds token rejected: subject is not a node id")
	}
	// A token from before roles existed could be either; it is neither.
	if !c.Role.valid() {
		return nil, errors.New("xds token rejected: no role; restart egressgate to mint the bottle's tokens again")
	}
	return c, nil
}

// rejection reduces a jwt error to one fixed sentinel. jwt's own messages
// can carry decoder detail taken from the token; these carry none, so a
// rejection can be logged and sent back to the client as is. The most
// telling reason comes first: an expired token signed by another key is
// reported as badly signed.
func rejection(err error) error {
	for _, reason := range []error{
		jwt.ErrTokenMalformed,
		jwt.ErrTokenUnverifiable,
		jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrTokenExpired,
		jwt.ErrTokenNotValidYet,
	} {
		if errors.Is(err, reason) {
			return fmt.Errorf("xds token rejected: %w", reason)
		}
	}
	return errors.New("xds token rejected: invalid")
}
