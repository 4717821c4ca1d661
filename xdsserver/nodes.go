package xdsserver

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/egressgate/egressgate/xdsauth"
)

// ExtProcCluster is the node cluster a split-mode ext_proc server presents.
// Its node id is the bottle name, like the bottle's Envoy, but it gets a
// snapshot of its own holding only the bottle's slot values, and only the
// bottle's ext_proc token may present it (xdsauth.NodeGuard).
const ExtProcCluster = xdsauth.ExtProcCluster

// extProcSuffix ends a sidecar's node key. Bottle names hold no "/"
// (config's name rule), so no Envoy's key ends with it.
const extProcSuffix = "/extproc"

// ExtProcNode is the snapshot key of a bottle's ext_proc server.
func ExtProcNode(bottle string) string { return bottle + extProcSuffix }

// NodeHash keys snapshots by bottle, keeping a bottle's Envoy and its
// ext_proc server apart.
type NodeHash struct{}

// ID implements cache.NodeHash.
func (NodeHash) ID(node *corev3.Node) string {
	if node.GetCluster() == ExtProcCluster {
		return ExtProcNode(node.GetId())
	}
	return node.GetId()
}

// awaited is what a node keyed key must acknowledge to hold snap: the
// resource types its kind of client subscribes to, each with the names
// that must have arrived. A type a client never asks for must not be
// awaited, or the wait could never end.
func awaited(key string, snap *cache.Snapshot) map[string][]string {
	if strings.HasSuffix(key, extProcSuffix) {
		// The sidecar asks for every secret (a wildcard subscription) and
		// nothing else: its slots and its server certificate, or an empty
		// set, which it acknowledges too.
		return map[string][]string{resource.SecretType: names(snap, resource.SecretType)}
	}
	// Envoy always asks for listeners and clusters; routes and secrets
	// only once a listener names them, so only non-empty ones are awaited.
	required := map[string][]string{}
	for _, typ := range []string{resource.ListenerType, resource.ClusterType, resource.RouteType, resource.SecretType} {
		if n := names(snap, typ); len(n) > 0 || typ == resource.ListenerType || typ == resource.ClusterType {
			required[typ] = n
		}
	}
	return required
}

func names(snap *cache.Snapshot, typ string) []string {
	out := []string{}
	for name := range snap.GetResources(typ) {
		out = append(out, name)
	}
	return out
}

// snapshotVersion is the version of snap's awaited types; ours version
// every type of a snapshot alike, but a sidecar's holds no listeners, so
// the version is read from a type the node awaits.
func snapshotVersion(required map[string][]string, snap *cache.Snapshot) string {
	for _, typ := range []string{resource.ListenerType, resource.SecretType} {
		if _, ok := required[typ]; ok {
			return snap.GetVersion(typ)
		}
	}
	return ""
}
