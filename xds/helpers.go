package xds

import (
	"fmt"
	"net"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// toAny validates m against Envoy's proto constraints, then packs it. The
// check has to happen here: ValidateAll on the resource that holds the Any
// does not look inside it, so an invalid filter or transport socket config
// would otherwise pass Translate and fail only as Envoy's NACK. The error
// names the message, because a failure here is a bug in a builder and the
// name says which.
func toAny(m proto.Message) (*anypb.Any, error) {
	name := proto.MessageName(m)
	v, ok := m.(validator)
	if !ok {
		// Every Envoy config type has generated validation; a message
		// without it is one we cannot vouch for.
		return nil, fmt.Errorf("pack %s: no ValidateAll method", name)
	}
	if err := v.ValidateAll(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", name, err)
	}
	// Deterministic, so that the same policy hashes to the same snapshot
	// version.
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("pack %s: %w", name, err)
	}
	return a, nil
}

// adsSource makes a resource follow the ADS stream it was delivered on, so
// every resource of a bottle arrives in one ordered stream.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// splitHostPort parses "host:port" into an Envoy-friendly pair.
func splitHostPort(addr string) (string, uint32, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return host, uint32(port), nil
}

func seconds(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func inlineString(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

func wrapBool(b bool) *wrapperspb.BoolValue { return wrapperspb.Bool(b) }
