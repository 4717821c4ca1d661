package xdsauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Metadata with which a bottle's Envoy opens its audit log stream.
const (
	MetadataAuditNode = "x-egressgate-node"
	MetadataAuditKey  = "x-egressgate-audit-key"
)

// AuditLogMethod is the gRPC method Envoy streams access logs on.
const AuditLogMethod = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"

// AuditKey is the key a bottle's Envoy presents to stream its audit log
// to the control plane: it lets a stream write that bottle's audit
// records and nothing else (it is no xDS token), and only the control
// plane, which holds the signing key, can make one. It travels in the
// listener configuration Envoy receives over xDS.
func (a *Authority) AuditKey(node string) string {
	mac := hmac.New(sha256.New, a.hmacKey())
	mac.Write([]byte("egressgate audit log key v1\x00" + node))
	return hex.EncodeToString(mac.Sum(nil))
}

// hmacKey is secret material derived from the signing key, for keys the
// authority derives rather than signs.
func (a *Authority) hmacKey() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		// Not reached for a P-256 key. Fail closed: random material
		// makes a key nobody can match.
		der = make([]byte, 32)
		_, _ = rand.Read(der)
	}
	sum := sha256.Sum256(append([]byte("egressgate derived keys v1\x00"), der...))
	return sum[:]
}

// authenticateAudit accepts an audit log stream presenting a node and its
// audit key; the node then travels in the context like a token's.
func (a *Authority) authenticateAudit(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	nodes, keys := md.Get(MetadataAuditNode), md.Get(MetadataAuditKey)
	if len(nodes) != 1 || len(keys) != 1 || nodes[0] == "" {
		return nil, status.Error(codes.Unauthenticated, errAuditKey.Error())
	}
	if !hmac.Equal([]byte(keys[0]), []byte(a.AuditKey(nodes[0]))) {
		return nil, status.Error(codes.Unauthenticated, errAuditKey.Error())
	}
	return context.WithValue(ctx, identityKey{}, Identity{Node: nodes[0], Role: roleAudit}), nil
}

var errAuditKey = errors.New("audit log: missing or wrong node and audit key")
