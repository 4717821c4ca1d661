package slotwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

// The sidecar's scanner (issue 13) is built from the slot values and two
// more inputs, each one generic secret of the sidecar's snapshot, absent
// when empty: the bottle's DLP rules (its manifest's `dlp` key) and the
// canaries agent-env planted in its agent's environment (package canary),
// which control reads from its state dir. Canary values are secrets like
// slot values, and travel the same way: only to that bottle's sidecar.
const (
	// DLPRulesSecret holds config.DLPRules as JSON (rulesWire) under
	// the key "rules".
	DLPRulesSecret = "dlp/rules"
	// CanariesSecret holds one key per canary, its name, whose data is the
	// canary's value.
	CanariesSecret = "dlp/canaries"

	rulesKey = "rules"
)

// DLPInputs are what a sidecar's scanner is built from besides its slots.
type DLPInputs struct {
	Rules config.DLPRules
	// Canaries are sorted by name.
	Canaries []dlp.Named
}

// rulesWire is config.DLPRules on the wire: the names are the contract,
// not Go's field names. Unknown keys are ignored, so a newer control
// plane may add some. A field config adds must be added here too
// (TestRulesWireCoversConfig fails until it is).
type rulesWire struct {
	Patterns []patternWire `json:"patterns,omitempty"`
	Allow    []string      `json:"allow,omitempty"`
}

type patternWire struct {
	Name    string `json:"name"`
	Literal string `json:"literal,omitempty"`
	Regex   string `json:"regex,omitempty"`
}

// DLPSecrets encodes the bottle's rules and canaries for its sidecar:
// nothing for empty ones, so that a bottle without DLP inputs has the
// snapshot it had before there were any. Errors name canaries, never
// values.
func DLPSecrets(rules config.DLPRules, canaries []dlp.Named) ([]types.Resource, error) {
	var out []types.Resource
	if len(rules.Patterns) > 0 || len(rules.Allow) > 0 {
		s, err := rulesSecret(rules)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(canaries) > 0 {
		s, err := canariesSecret(canaries)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func rulesSecret(rules config.DLPRules) (*tlsv3.Secret, error) {
	w := rulesWire{Allow: rules.Allow}
	for _, p := range rules.Patterns {
		w.Patterns = append(w.Patterns, patternWire{Name: p.Name, Literal: p.Literal, Regex: p.Regex})
	}
	data, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DLPRulesSecret, err)
	}
	return genericSecret(DLPRulesSecret, map[string]*corev3.DataSource{rulesKey: inlineBytes(data)})
}

func canariesSecret(canaries []dlp.Named) (*tlsv3.Secret, error) {
	fields := make(map[string]*corev3.DataSource, len(canaries))
	for _, c := range canaries {
		switch {
		case c.Name == "":
			return nil, errors.New("canary with no name")
		case c.Value.Empty():
			return nil, fmt.Errorf("canary %s has no value", c.Name)
		case fields[c.Name] != nil:
			return nil, fmt.Errorf("canary %s given twice", c.Name)
		}
		fields[c.Name] = inlineBytes([]byte(c.Value.Reveal()))
	}
	return genericSecret(CanariesSecret, fields)
}

func genericSecret(name string, fields map[string]*corev3.DataSource) (*tlsv3.Secret, error) {
	s := &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secrets: fields}}}
	// The error names the secret and the field, never the value.
	if err := s.ValidateAll(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// DecodeDLPSecret adds s to in when it is one of the DLP secrets, and
// reports whether it was. Its errors never quote a value.
func DecodeDLPSecret(s *tlsv3.Secret, in *DLPInputs) (ok bool, err error) {
	switch s.GetName() {
	case DLPRulesSecret:
		in.Rules, err = decodeRules(s)
	case CanariesSecret:
		in.Canaries, err = decodeCanaries(s)
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w", s.GetName(), err)
	}
	return true, nil
}

func decodeRules(s *tlsv3.Secret) (config.DLPRules, error) {
	g := s.GetGenericSecret()
	if g == nil {
		return config.DLPRules{}, errors.New("not a generic secret")
	}
	ds, ok := g.GetSecrets()[rulesKey]
	if !ok {
		return config.DLPRules{}, fmt.Errorf("missing %s", rulesKey)
	}
	data, err := inlineData(ds)
	if err != nil {
		return config.DLPRules{}, fmt.Errorf("%s: %w", rulesKey, err)
	}
	var w rulesWire
	if err := json.Unmarshal(data, &w); err != nil {
		// Not wrapped: a JSON error may quote a piece of a pattern.
		return config.DLPRules{}, fmt.Errorf("%s: not the rules' JSON", rulesKey)
	}
	rules := config.DLPRules{Allow: w.Allow}
	for _, p := range w.Patterns {
		rules.Patterns = append(rules.Patterns, config.DLPPattern{Name: p.Name, Literal: p.Literal, Regex: p.Regex})
	}
	return rules, nil
}

func decodeCanaries(s *tlsv3.Secret) ([]dlp.Named, error) {
	g := s.GetGenericSecret()
	if g == nil {
		return nil, errors.New("not a generic secret")
	}
	var out []dlp.Named
	for name, ds := range g.GetSecrets() {
		v, err := inlineData(ds)
		if err != nil {
			return nil, fmt.Errorf("canary %s: %w", name, err)
		}
		if name == "" || len(v) == 0 {
			return nil, fmt.Errorf("canary %q has no name or no value", name)
		}
		out = append(out, dlp.Named{Name: name, Value: config.NewSecret(string(v))})
	}
	// A map has no order; the sidecar compares one set with the next.
	slices.SortFunc(out, func(a, b dlp.Named) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
