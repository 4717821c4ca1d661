package xdsserver

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/egressgate/egressgate/xdsauth"
)

// ExtProcCluster is the node cluster a split-mode ext_proc server presents.
// Its node id is the bottle name, like the bottle's Envoy, but it gets a
// snapshot of its own holding only the bottle's slot values, and only the
// bottle's ext_proc token may present it (xdsauth.NodeGuard).
const ExtProcCluster = xdsauth.ExtProcCluster

// ExtProcNode is the snapshot key of a bottle's ext_proc server.
func ExtProcNode(bottle string) string { return bottle + "/extproc" }

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
