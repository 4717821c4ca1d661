package xds

// Resource names are derived from the host alone so that the same Policy
// always yields the same names, and a diff of two snapshots is a diff of
// hosts.
const (
	proxyListenerName = "proxy"
	mitmListenerName  = "mitm"
	proxyRouteName    = "proxy"
	mitmClusterName   = "mitm"
	extProcCluster    = "extproc"
	extProcFilterName = "envoy.filters.http.ext_proc"
)

func mitmRouteName(host string) string        { return "mitm/" + host }
func upstreamClusterName(host string) string  { return "upstream/" + host }
func websocketClusterName(host string) string { return "upstream-ws/" + host }
func tunnelClusterName(host string) string    { return "passthrough/" + host }
func leafSecretName(host string) string       { return "leaf/" + host }
