package xds

import (
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/xdsauth"
)

// bootstrapXDSCluster is the xDS server's cluster in every bottle's
// bootstrap (envoy/bootstrap.yaml.tmpl).
const bootstrapXDSCluster = "xds"

const (
	// rejectedStatus is the upstream answer that marks an injected
	// credential as refused. Only 401: a 403 means "not this", often for
	// reasons that have nothing to do with the credential (a private repo,
	// a rate limit, a bot check), and marking a working login as refused
	// would cut the agent off for nothing.
	rejectedStatus = 401
	// credentialLogFlush bounds how long Envoy may hold a refusal before
	// sending it; with batching off it sends at once, and this only
	// matters if that ever changes.
	credentialLogFlush = 100 * time.Millisecond
)

// credentialLog streams to egressgate's ext_proc server, over the access
// log service on the same cluster and with the same caller key, the
// entries of upstream answers that refuse the route's credential. Envoy
// filters on the status code, so a request the upstream accepts costs one
// comparison and no message. The custom tags name the slot from the
// listener's own configuration, which the agent cannot touch.
func credentialLog(p *config.Policy, r config.Route, callerKey string) (*accesslogv3.AccessLog, error) {
	slot, _ := p.Slot(r.Auth.Slot)
	cfg, err := toAny(&grpcalsv3.HttpGrpcAccessLogConfig{CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
		LogName:             extprocapi.CredentialLogName,
		GrpcService:         extProcService(callerKey),
		TransportApiVersion: corev3.ApiVersion_V3,
		// 0 turns batching off: the refusal should reach ext_proc before
		// the agent's next request does.
		BufferSizeBytes:     wrapperspb.UInt32(0),
		BufferFlushInterval: seconds(credentialLogFlush),
		CustomTags: []*tracingv3.CustomTag{
			literalTag(extprocapi.TagSlot, r.Auth.Slot),
			literalTag(extprocapi.TagHost, r.Host),
			literalTag(extprocapi.TagSource, slot.Source.String()),
		},
	}})
	if err != nil {
		return nil, err
	}
	return &accesslogv3.AccessLog{
		Name: "envoy.access_loggers.http_grpc",
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
			StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
				Op: accesslogv3.ComparisonFilter_EQ,
				Value: &corev3.RuntimeUInt32{
					DefaultValue: rejectedStatus,
					RuntimeKey:   "egressgate.credential_log.status",
				},
			}},
		}},
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg},
	}, nil
}

func literalTag(name, value string) *tracingv3.CustomTag {
	return &tracingv3.CustomTag{Tag: name, Type: &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: value}}}
}

// extProcService is egressgate's ext_proc server as Envoy calls it: the
// ext_proc cluster, presenting the bottle's caller key on every stream.
// The server answers with credentials, so it answers only that key.
func extProcService(callerKey string) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: extProcCluster},
		},
		InitialMetadata: []*corev3.HeaderValue{{Key: extprocapi.MetadataCallerKey, Value: callerKey}},
	}
}

// auditLogFlush is how long Envoy may batch audit entries before sending
// them: the trail is for people and alerts, seconds are fine, and a batch
// per interval is cheaper than a message per request.
const auditLogFlush = 500 * time.Millisecond

// auditLog streams every request of a listener (proxy, or one
// intercepted host's mitm) to the control plane for the audit trail
// (package audit), over the bootstrap's xDS cluster: the trail does not
// depend on ext_proc, so a request refused because ext_proc failed is in
// it too. The stream presents the bottle's audit key, which can write its
// records and read nothing. The tags say which listener, host and slot,
// from the listener's own configuration; nothing the agent sends can set
// them. Envoy batches the entries and drops, never blocks, when the
// server is slow or gone.
func auditLog(p *config.Policy, listener string, r *config.Route, auditKey string) (*accesslogv3.AccessLog, error) {
	tags := []*tracingv3.CustomTag{
		literalTag(audit.TagBottle, p.Name),
		literalTag(audit.TagListener, listener),
	}
	if r != nil {
		tags = append(tags, literalTag(audit.TagHost, r.Host))
		if r.Auth != nil {
			tags = append(tags, literalTag(audit.TagSlot, r.Auth.Slot))
		}
	}
	cfg, err := toAny(&grpcalsv3.HttpGrpcAccessLogConfig{CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
		LogName: audit.LogName,
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: bootstrapXDSCluster}},
			InitialMetadata: []*corev3.HeaderValue{
				{Key: xdsauth.MetadataAuditNode, Value: p.Name},
				{Key: xdsauth.MetadataAuditKey, Value: auditKey},
			},
		},
		TransportApiVersion: corev3.ApiVersion_V3,
		BufferFlushInterval: seconds(auditLogFlush),
		CustomTags:          tags,
		// Set by the proxy listener (agentAddressFilter); on an internal
		// listener the downstream address is Envoy's own.
		FilterStateObjectsToLog: []string{audit.TagAgent},
	}})
	if err != nil {
		return nil, err
	}
	return &accesslogv3.AccessLog{
		Name:       "envoy.access_loggers.http_grpc",
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: cfg},
	}, nil
}
