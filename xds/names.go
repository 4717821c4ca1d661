package xds

// Resource names are derived from the host alone so that the same Policy
// always yields the same names, and a diff of two snapshots is a diff of
// hosts.
const (
	proxyListenerName = "proxy"
	proxyRouteName    = "proxy"
	extProcCluster    = "extproc"
	extProcFilterName = "envoy.filters.http.ext_proc"
)

// A host's internal listener, the cluster that reaches it and its route
// configuration share one name: they are one path, for one host.
func mitmRouteName(host string) string        { return "mitm/" + host }
func mitmListenerName(host string) string     { return "mitm/" + host }
func mitmClusterName(host string) string      { return "mitm/" + host }
func upstreamClusterName(host string) string  { return "upstream/" + host }
func websocketClusterName(host string) string { return "upstream-ws/" + host }
func tunnelClusterName(host string) string    { return "passthrough/" + host }
func leafSecretName(host string) string       { return "leaf/" + host }
