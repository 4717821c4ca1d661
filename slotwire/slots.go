package slotwire

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/egressgate/egressgate/config"
)

// In split mode the ext_proc server runs beside Envoy in the bottle and
// learns slot values from `egressgate control` over the same ADS push path
// as Envoy's routes: one SDS generic secret per slot. These names and keys
// are the wire contract between the two ends.
const (
	// SlotSecretPrefix starts the name of every slot secret
	// ("slot/EGRESS_TOKEN_0"); other secrets on the stream are not slots.
	SlotSecretPrefix = "slot/"

	slotKeyValue      = "value"
	slotKeySourceKind = "source_kind"
	slotKeySourceRef  = "source_ref"
	slotKeyExpiry     = "expiry"
	// slotKeyProblem says why an empty slot's host login is unusable, so
	// the sidecar refuses its routes as "logged out", not as "not set".
	slotKeyProblem = "problem"
)

// SlotSecrets encodes a policy's slots as SDS generic secrets for the
// bottle's ext_proc node, in slot order. An empty slot carries no "value"
// key, so the ext_proc side sees it empty and refuses its routes (fail
// closed) rather than injecting an empty credential.
func SlotSecrets(p *config.Policy) ([]types.Resource, error) {
	if p == nil {
		return nil, errors.New("slot secrets: nil policy")
	}
	out := make([]types.Resource, 0, len(p.Slots))
	for _, sl := range p.Slots {
		s, err := slotSecret(sl)
		if err != nil {
			return nil, fmt.Errorf("slot secrets for bottle %s: %w", p.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func slotSecret(sl config.Slot) (*tlsv3.Secret, error) {
	if sl.Name == "" {
		return nil, errors.New("slot with no name")
	}
	fields := map[string]*corev3.DataSource{
		slotKeySourceKind: inlineString(string(sl.Source.Kind)),
		slotKeySourceRef:  inlineString(sl.Source.Ref),
	}
	if sl.Present() {
		fields[slotKeyValue] = inlineBytes([]byte(sl.Value.Reveal()))
	}
	if sl.Problem != "" {
		fields[slotKeyProblem] = inlineString(sl.Problem)
	}
	if !sl.Expiry.IsZero() {
		// Nanosecond precision so the ext_proc side expires the slot at the
		// same instant the control side would.
		fields[slotKeyExpiry] = inlineString(sl.Expiry.UTC().Format(time.RFC3339Nano))
	}
	s := &tlsv3.Secret{
		Name: SlotSecretPrefix + sl.Name,
		Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secrets: fields}},
	}
	// The error names the slot and the field, never the value.
	if err := s.ValidateAll(); err != nil {
		return nil, fmt.Errorf("slot %s: %w", sl.Name, err)
	}
	return s, nil
}

// DecodeSlotSecret is the inverse of SlotSecrets for one secret, used by the
// ext_proc side. Its errors never quote a value. Unknown keys are ignored so
// that a newer control plane may add fields.
func DecodeSlotSecret(s *tlsv3.Secret) (config.Slot, error) {
	name, ok := strings.CutPrefix(s.GetName(), SlotSecretPrefix)
	if !ok || name == "" {
		return config.Slot{}, fmt.Errorf("secret %q is not a slot secret", s.GetName())
	}
	g := s.GetGenericSecret()
	if g == nil {
		return config.Slot{}, fmt.Errorf("slot %s: not a generic secret", name)
	}
	sl, err := decodeSlotFields(name, g.GetSecrets())
	if err != nil {
		return config.Slot{}, fmt.Errorf("slot %s: %w", name, err)
	}
	return sl, nil
}

func decodeSlotFields(name string, fields map[string]*corev3.DataSource) (config.Slot, error) {
	sl := config.Slot{Name: name}
	kind, err := requiredField(fields, slotKeySourceKind)
	if err != nil {
		return sl, err
	}
	ref, err := requiredField(fields, slotKeySourceRef)
	if err != nil {
		return sl, err
	}
	sl.Source = config.Source{Kind: config.SourceKind(kind), Ref: ref}
	if ds, ok := fields[slotKeyValue]; ok {
		v, err := inlineData(ds)
		if err != nil {
			return sl, fmt.Errorf("%s: %w", slotKeyValue, err)
		}
		sl.Value = config.NewSecret(string(v))
	}
	if ds, ok := fields[slotKeyExpiry]; ok {
		if sl.Expiry, err = decodeExpiry(ds); err != nil {
			return sl, err
		}
	}
	if ds, ok := fields[slotKeyProblem]; ok {
		v, err := inlineData(ds)
		if err != nil {
			return sl, fmt.Errorf("%s: %w", slotKeyProblem, err)
		}
		sl.Problem = string(v)
	}
	return sl, nil
}

// requiredField returns a non-empty field: a slot without its source could
// not tell the agent how to fix it (config.Source.Fix).
func requiredField(fields map[string]*corev3.DataSource, key string) (string, error) {
	ds, ok := fields[key]
	if !ok {
		return "", fmt.Errorf("missing %s", key)
	}
	v, err := inlineData(ds)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if len(v) == 0 {
		return "", fmt.Errorf("empty %s", key)
	}
	return string(v), nil
}

func decodeExpiry(ds *corev3.DataSource) (time.Time, error) {
	v, err := inlineData(ds)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", slotKeyExpiry, err)
	}
	// time.RFC3339 parsing also accepts the fractional seconds we send.
	t, err := time.Parse(time.RFC3339, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", slotKeyExpiry, err)
	}
	return t, nil
}

// inlineData accepts only inline data. A DataSource may also name a file or
// an environment variable; following one would let the control plane make
// the sidecar read its own files, and we never send one.
func inlineData(ds *corev3.DataSource) ([]byte, error) {
	switch v := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return v.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(v.InlineString), nil
	default:
		return nil, errors.New("not inline data")
	}
}
