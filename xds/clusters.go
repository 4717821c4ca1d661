package xds

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	internalupstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/internal_upstream/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/egressgate/egressgate/config"
)

const (
	connectTimeout        = 5 * time.Second
	httpProtocolOptionsID = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// upstreamCluster is where an intercepted host's requests go: TLS with SNI =
// host, the certificate checked against the system roots or the route's own
// CA and against the host name, HTTP/2 or HTTP/1.1 as the upstream offers.
func upstreamCluster(r config.Route, systemCAFile string) (*clusterv3.Cluster, error) {
	return tlsCluster(upstreamClusterName(r.Host), r, systemCAFile, []string{"h2", "http/1.1"})
}

// websocketCluster is the same upstream spoken to in HTTP/1.1 only: a
// WebSocket upgrade cannot ride an HTTP/2 connection unless the upstream
// supports extended CONNECT (RFC 8441), which most do not announce.
func websocketCluster(r config.Route, systemCAFile string) (*clusterv3.Cluster, error) {
	return tlsCluster(websocketClusterName(r.Host), r, systemCAFile, []string{"http/1.1"})
}

func tlsCluster(name string, r config.Route, systemCAFile string, alpn []string) (*clusterv3.Cluster, error) {
	c, err := dialCluster(name, r)
	if err != nil {
		return nil, err
	}
	trusted := &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: systemCAFile}}
	if r.Upstream.CAPEM != nil {
		trusted = inlineBytes(r.Upstream.CAPEM)
	}
	tls, err := toAny(&tlsv3.UpstreamTlsContext{
		Sni: r.Host,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: alpn,
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: trusted,
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: r.Host}},
				}},
			}},
		},
	})
	if err != nil {
		return nil, err
	}
	c.TransportSocket = &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls},
	}
	if len(alpn) == 1 {
		// HTTP/1.1 is Envoy's default upstream protocol.
		return c, nil
	}
	auto, err := toAny(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &upstreamhttpv3.HttpProtocolOptions_AutoHttpConfig{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		}},
	})
	if err != nil {
		return nil, err
	}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsID: auto}
	return c, nil
}

// tunnelCluster carries a passthrough host's CONNECT payload as plain TCP:
// Envoy never sees inside, which is why such routes can hold no credential.
func tunnelCluster(r config.Route) (*clusterv3.Cluster, error) {
	return dialCluster(tunnelClusterName(r.Host), r)
}

// dialCluster connects to the route's upstream address, or to host:443 found
// through DNS by Envoy.
func dialCluster(name string, r config.Route) (*clusterv3.Cluster, error) {
	addr := r.Upstream.Address
	if addr == "" {
		addr = r.Host + ":443"
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", r.Host, err)
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       seconds(connectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discoveryType(host)},
		// Many web hosts publish AAAA records that a bottle's network
		// cannot reach; prefer IPv4 and fall back.
		DnsLookupFamily: clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment:  singleEndpoint(name, socketAddress(host, port)),
	}, nil
}

// discoveryType: an IP needs no resolution; a name is resolved by Envoy with
// LOGICAL_DNS, which suits big web services behind rotating addresses.
func discoveryType(host string) clusterv3.Cluster_DiscoveryType {
	if _, err := netip.ParseAddr(host); err == nil {
		return clusterv3.Cluster_STATIC
	}
	return clusterv3.Cluster_LOGICAL_DNS
}

func singleEndpoint(cluster string, addr *corev3.Address) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}},
		}}}},
	}
}

// mitmCluster hands a terminated CONNECT tunnel to the internal mitm
// listener, inside the same Envoy, without touching a socket. The
// internal_upstream transport carries the tunnel's filter state that is
// shared with upstream (the agent's address, agentAddressFilter) over to
// the internal listener's connection.
func mitmCluster(host string) (*clusterv3.Cluster, error) {
	internal := &corev3.Address{Address: &corev3.Address_EnvoyInternalAddress{
		EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
			AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: mitmListenerName(host)},
		},
	}}
	raw, err := toAny(&rawbufferv3.RawBuffer{})
	if err != nil {
		return nil, err
	}
	carry, err := toAny(&internalupstreamv3.InternalUpstreamTransport{TransportSocket: &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.raw_buffer",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: raw},
	}})
	if err != nil {
		return nil, err
	}
	return &clusterv3.Cluster{
		Name:                 mitmClusterName(host),
		ConnectTimeout:       seconds(connectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment:       singleEndpoint(mitmClusterName(host), internal),
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.internal_upstream",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: carry},
		},
	}, nil
}

// extProcClusterFor points Envoy's ext_proc filter at egressgate's ext_proc
// gRPC server, which speaks HTTP/2 only. With trustedCA (a sidecar, in
// split mode) the link is TLS and the server must present a certificate
// from that CA naming the address's host: ext_proc hands out credentials,
// and its requests carry the agent's headers.
func extProcClusterFor(addr string, trustedCA []byte) (*clusterv3.Cluster, error) {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		return extProcPipeCluster(path)
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ext_proc cluster: %w", err)
	}
	var transport *corev3.TransportSocket
	if trustedCA != nil {
		if transport, err = verifiedTLS(host, trustedCA, []string{"h2"}); err != nil {
			return nil, err
		}
	}
	return extProcClusterAt(socketAddress(host, port), discoveryType(host), transport)
}

// UnixPrefix marks an ext_proc address as a Unix domain socket path.
const UnixPrefix = "unix:"

// extProcPipeCluster reaches an ext_proc server on a Unix socket of the
// same host: no TCP stack between Envoy and egressgate on every request,
// and no TLS, as nothing crosses a network (the socket's mode keeps other
// users out; the caller key still binds the stream).
func extProcPipeCluster(path string) (*clusterv3.Cluster, error) {
	if path == "" {
		return nil, fmt.Errorf("ext_proc cluster: empty socket path")
	}
	pipe := &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path}}}
	return extProcClusterAt(pipe, clusterv3.Cluster_STATIC, nil)
}

// extProcClusterAt is the ext_proc cluster with one endpoint, speaking
// HTTP/2 as gRPC needs; transport nil is plaintext.
func extProcClusterAt(addr *corev3.Address, typ clusterv3.Cluster_DiscoveryType, transport *corev3.TransportSocket) (*clusterv3.Cluster, error) {
	h2, err := toAny(&upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
			},
		}},
	})
	if err != nil {
		return nil, err
	}
	return &clusterv3.Cluster{
		Name:                          extProcCluster,
		ConnectTimeout:                seconds(time.Second),
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: typ},
		LoadAssignment:                singleEndpoint(extProcCluster, addr),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpProtocolOptionsID: h2},
		TransportSocket:               transport,
	}, nil
}

// verifiedTLS is a TLS client transport that accepts only a certificate
// from trustedCA naming host (a DNS name, or an IP literal in an IP SAN).
func verifiedTLS(host string, trustedCA []byte, alpn []string) (*corev3.TransportSocket, error) {
	san, sni := tlsv3.SubjectAltNameMatcher_DNS, host
	if _, err := netip.ParseAddr(host); err == nil {
		// SNI carries names only (RFC 6066).
		san, sni = tlsv3.SubjectAltNameMatcher_IP_ADDRESS, ""
	}
	tls, err := toAny(&tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: alpn,
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inlineBytes(trustedCA),
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: san,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
				}},
			}},
		},
	})
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls},
	}, nil
}
