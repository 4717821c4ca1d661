package xdsauth

import (
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

// nodePattern is the manifest's rule for a bottle name. Node ids become
// token file names, so it also keeps paths inside STATE_DIR/tokens.
var nodePattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// Mint returns an ES256 token for node, valid from now for ttl.
func (a *Authority) Mint(node string, now time.Time, ttl time.Duration) (string, error) {
	if !nodePattern.MatchString(node) {
		return "", fmt.Errorf("mint xDS token: node id %.64q must match [a-z0-9-]+", node)
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint xDS token for %s: ttl %s is not positive", node, ttl)
	}
	claims := jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   node,
		Audience:  jwt.ClaimStrings{Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("mint xDS token for %s: %w", node, err)
	}
	return token, nil
}

// Verify checks token's signature (ES256 with this authority's key, no
// other algorithm), audience, issuer and expiry at now, and returns its
// subject, the node the token was minted for. Errors never quote the token.
func (a *Authority) Verify(token string, now time.Time) (string, error) {
	claims, err := a.parse(token, now)
	if err != nil {
		return "", err
	}
	return claims.Subject, nil
}

func (a *Authority) parse(token string, now time.Time) (*jwt.RegisteredClaims, error) {
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
	claims := &jwt.RegisteredClaims{}
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodES256 {
			return nil, jwt.ErrTokenUnverifiable
		}
		return &a.key.PublicKey, nil
	})
	if err != nil {
		return nil, rejection(err)
	}
	if !nodePattern.MatchString(claims.Subject) {
		return nil, errors.New("xds token rejected: subject is not a node id")
	}
	return claims, nil
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
