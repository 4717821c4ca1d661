package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// SchemaJSON is a JSON Schema (2020-12) of the manifest, for editors: they
// complete keys and flag mistakes while a manifest is written. Its shape
// (every key, its type, nesting) is reflected from the raw* types decode
// walks, so it cannot list a key the loader refuses or miss one it takes;
// what reflection cannot know (descriptions, allowed values, which keys
// exclude which) comes from schemaNotes, which must cover every key.
// Load stays the authority: the schema cannot read files or the
// environment, so a manifest it accepts can still fail to load.
func SchemaJSON() ([]byte, error) {
	b := schemaBuilder{used: map[string]bool{}}
	root, err := b.schemaOf(reflect.TypeFor[rawManifest](), "")
	if err != nil {
		return nil, err
	}
	for path := range schemaNotes {
		if !b.used[path] {
			return nil, fmt.Errorf("manifest schema: a note for %s, which is no key", path)
		}
	}
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "egressgate bottle manifest"
	root["description"] = "What a bottle's agent may reach through the egress and which host credential each route carries. " +
		"Checked by `egressgate validate --manifest FILE`; reference: docs/manifest.md."
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// schemaNote is what the schema says about one key beyond its type.
type schemaNote struct {
	description string
	required    bool
	// extra is merged into the key's schema (enum, pattern, default, …).
	extra map[string]any
}

// methodNames is knownMethods in any letter case, as match accepts them,
// with the canonical spellings offered for completion.
func methodNames() map[string]any {
	var alternatives []string
	for _, m := range knownMethods {
		var b strings.Builder
		for _, r := range m {
			fmt.Fprintf(&b, "[%c%c]", r, r+'a'-'A')
		}
		alternatives = append(alternatives, b.String())
	}
	return map[string]any{"anyOf": []any{
		map[string]any{"enum": knownMethods},
		map[string]any{"pattern": "^(?:" + strings.Join(alternatives, "|") + ")$"},
	}}
}

// schemaNotes documents each key by its path (list items as "[]"). Rules
// that span keys sit on the object that holds them.
var schemaNotes = map[string]schemaNote{
	"name": {required: true, description: "The bottle's name: its Envoy node id, state directory and label in status, logs, metrics and the audit trail.",
		extra: map[string]any{"pattern": nameRE.String(), "maxLength": 63}},
	"agent_provider": {description: "Which coding agent runs in the bottle, and whether it uses the host's login."},
	"agent_provider.template": {description: "Adds the routes the agent needs: codex adds chatgpt.com (/backend-api/) and auth.openai.com; claude adds api.anthropic.com.",
		extra: map[string]any{"enum": []string{templateCodex, templateClaude, templateNone}, "default": templateNone}},
	"agent_provider.forward_host_credentials": {description: "Inject the host's login (Codex: $CODEX_HOME/auth.json; Claude Code: auth_token or $CLAUDE_CONFIG_DIR/.credentials.json) into the template's routes. The agent gets placeholders only.",
		extra: map[string]any{"default": false}},
	"agent_provider.refresh_host_credentials": {description: "codex with forward_host_credentials only: egressgate refreshes the host's Codex login itself before it expires.",
		extra: map[string]any{"default": false}},
	"agent_provider.auth_token": {description: "claude only: a host environment variable holding the token to inject for api.anthropic.com, instead of the host's Claude Code login.",
		extra: map[string]any{"pattern": envNameRE.String()}},
	"dlp": {description: "Outbound secret detection on every intercepted route: what the agent sends is scanned for credentials before it leaves. Left out: mode block, large_body block, max_body_bytes 8 MiB."},
	"dlp.mode": {description: "block: refuse a request with any finding. log: record format and pattern findings and forward; known secrets (the credentials the egress holds) and canaries are still refused. off: scan no body.",
		extra: map[string]any{"enum": dlpModes, "default": string(DLPBlock)}},
	"dlp.large_body": {description: "For a body longer than max_body_bytes: block refuses it; pass scans the first max_body_bytes and forwards the rest unscanned.",
		extra: map[string]any{"enum": largeBodyActions, "default": string(LargeBodyBlock)}},
	"dlp.max_body_bytes": {description: "How many body bytes Envoy buffers and scans before large_body decides.",
		extra: map[string]any{"minimum": 1, "maximum": MaxDLPMaxBody, "default": DefaultDLPMaxBody}},
	"dlp.patterns":   {description: "Extra rules, beyond the well-known credential formats and the egress's own credentials, which are always looked for."},
	"dlp.patterns[]": {description: "One named rule: exactly one of literal and regex.", extra: exactlyOne("literal", "regex")},
	"dlp.patterns[].name": {required: true, description: "Labels the rule's findings in refusals and audit records; unique.",
		extra: map[string]any{"pattern": nameRE.String()}},
	"dlp.patterns[].literal": {description: fmt.Sprintf("An exact string to look for, in every encoding the scanner decodes; at least %d bytes.", DLPMinLiteralLen),
		extra: map[string]any{"minLength": DLPMinLiteralLen}},
	"dlp.patterns[].regex": {description: "An RE2 expression (Go's regexp syntax) to look for; it must not match the empty string."},
	"dlp.allow":            {description: "Fingerprints that are not findings: values a person has looked at and let through, as refusals show them."},
	"dlp.allow[]": {description: "A fingerprint: 12 lower-case hex digits, never the value itself.",
		extra: map[string]any{"pattern": fingerprintRE.String()}},
	"egress":          {description: "What the agent may reach."},
	"egress.routes":   {description: "One entry per upstream host; a host not listed (nor added by the template) is refused at CONNECT."},
	"egress.routes[]": {description: "One upstream host and what the agent may do there.", extra: passthroughRules()},
	"egress.routes[].host": {required: true, description: "The host exactly as the agent sends it in CONNECT and SNI: a lower-case DNS name, no port, scheme, path or wildcard.",
		extra: map[string]any{"pattern": `^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`, "maxLength": 253}},
	"egress.routes[].tls": {description: "intercept: Envoy terminates TLS with a bottle-CA leaf, strips the agent's credentials and injects the route's. passthrough: an opaque TLS tunnel (no auth, matches or ca_file, and no dlp scan).",
		extra: map[string]any{"enum": []string{string(Intercept), string(Passthrough)}, "default": string(Intercept)}},
	"egress.routes[].auth": {description: "The host credential injected into this route's requests; the agent's own credentials are always stripped.",
		extra: map[string]any{"anyOf": []any{
			map[string]any{"type": "null"},
			map[string]any{"allOf": []any{
				map[string]any{"oneOf": []any{
					map[string]any{"required": []string{"scheme"}},
					map[string]any{"required": []string{"header"}},
				}},
				map[string]any{"oneOf": []any{
					map[string]any{"required": []string{"token_ref"}},
					map[string]any{"required": []string{"token_file"}},
				}},
			}},
		}}},
	"egress.routes[].auth.scheme": {description: "Inject as `Authorization: <scheme> <token>`. Set scheme or header.",
		extra: map[string]any{"enum": []string{"Bearer", "token"}}},
	"egress.routes[].auth.header": {description: "Inject the raw token in this header (e.g. x-api-key) instead of Authorization. Set scheme or header.",
		extra: map[string]any{"pattern": `^[A-Za-z0-9][A-Za-z0-9-]*$`}},
	"egress.routes[].auth.token_ref": {description: "A host environment variable holding the token (its name, never the token). Unset, the route's requests are refused with the fix.",
		extra: map[string]any{"pattern": envNameRE.String()}},
	"egress.routes[].auth.token_file": {description: "A host file holding only the token, relative to the manifest's directory; watched, so rewriting it rotates the token."},
	"egress.routes[].matches":         {description: "Narrows what the route allows; a request must satisfy one entry. Leave out (or empty) to allow every path and method."},
	"egress.routes[].matches[]": {description: "Paths, methods or both; a request matches when its path matches one of the paths and its method is one of the methods.",
		extra: map[string]any{"anyOf": []any{
			map[string]any{"required": []string{"paths"}},
			map[string]any{"required": []string{"methods"}},
		}}},
	"egress.routes[].matches[].paths":   {description: "Paths this entry allows (any, when left out)."},
	"egress.routes[].matches[].paths[]": {description: "One path rule, compared with the normalised request path."},
	"egress.routes[].matches[].paths[].type": {required: true, description: "prefix: the path starts with value; exact: the path is value.",
		extra: map[string]any{"enum": []string{string(PathPrefix), string(PathExact)}}},
	"egress.routes[].matches[].paths[].value": {required: true, description: "Starts with /; no query, fragment, spaces or control characters.",
		extra: map[string]any{"pattern": `^/[^?#\s]*$`}},
	"egress.routes[].matches[].methods":   {description: "HTTP methods this entry allows (any, when left out); any letter case."},
	"egress.routes[].matches[].methods[]": {description: "An HTTP method.", extra: methodNames()},
	"egress.routes[].upstream":            {description: "Where Envoy connects for this host, when not HOST:443 with the system roots."},
	"egress.routes[].upstream.address": {description: "host:port to connect to instead of HOST:443 (a mirror, a local stand-in).",
		extra: map[string]any{"pattern": `^.+:[0-9]{1,5}$`}},
	"egress.routes[].upstream.ca_file": {description: "PEM file of the CAs that verify the upstream instead of the system roots, relative to the manifest's directory. Not for passthrough routes."},
	"egress.routes[].dlp":              {description: "This route's own mode, large_body or max_body_bytes, over the bottle's dlp. A passthrough route cannot be scanned: only mode: off is allowed there."},
	"egress.routes[].dlp.mode": {description: "Overrides dlp.mode for this route.",
		extra: map[string]any{"enum": dlpModes}},
	"egress.routes[].dlp.large_body": {description: "Overrides dlp.large_body for this route.",
		extra: map[string]any{"enum": largeBodyActions}},
	"egress.routes[].dlp.max_body_bytes": {description: "Overrides dlp.max_body_bytes for this route.",
		extra: map[string]any{"minimum": 1, "maximum": MaxDLPMaxBody}},
}

var (
	dlpModes         = []string{string(DLPBlock), string(DLPLog), string(DLPOff)}
	largeBodyActions = []string{string(LargeBodyBlock), string(LargeBodyPass)}
)

// exactlyOne requires one of two keys and refuses both.
func exactlyOne(a, b string) map[string]any {
	return map[string]any{"oneOf": []any{
		map[string]any{"required": []string{a}},
		map[string]any{"required": []string{b}},
	}}
}

// passthroughRules are what a passthrough route cannot have: Envoy never
// sees inside its tunnel.
func passthroughRules() map[string]any {
	return map[string]any{
		"if": map[string]any{"required": []string{"tls"}, "properties": map[string]any{"tls": map[string]any{"const": string(Passthrough)}}},
		"then": map[string]any{
			"not": map[string]any{"anyOf": []any{map[string]any{"required": []string{"auth"}}, map[string]any{"required": []string{"matches"}}}},
			// dlp: only mode: off, which says what is true anyway.
			"properties": map[string]any{"dlp": map[string]any{"anyOf": []any{
				map[string]any{"type": "null"},
				map[string]any{"properties": map[string]any{"mode": map[string]any{"const": string(DLPOff)}}, "required": []string{"mode"}, "maxProperties": 1},
			}}},
		},
	}
}

type schemaBuilder struct {
	used map[string]bool // the notes consulted
}

// schemaOf is the schema of a value of type t found at path.
func (b schemaBuilder) schemaOf(t reflect.Type, path string) (map[string]any, error) {
	note, ok := schemaNotes[path]
	if !ok && path != "" {
		return nil, fmt.Errorf("manifest schema: no note for %s", path)
	}
	b.used[path] = true
	s := map[string]any{}
	if note.description != "" {
		s["description"] = note.description
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		s["type"] = nullable("object", path, note)
		s["additionalProperties"] = false
		props := map[string]any{}
		var required []string
		for f := range t.Fields() {
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			child := key
			if path != "" {
				child = path + "." + key
			}
			ps, err := b.schemaOf(f.Type, child)
			if err != nil {
				return nil, err
			}
			props[key] = ps
			if schemaNotes[child].required {
				required = append(required, key)
			}
		}
		s["properties"] = props
		if len(required) > 0 {
			s["required"] = required
		}
	case reflect.Slice:
		s["type"] = nullable("array", path, note)
		items, err := b.schemaOf(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		s["items"] = items
	case reflect.String:
		s["type"] = nullable("string", path, note)
		if note.required {
			s["minLength"] = 1
		}
	case reflect.Bool:
		s["type"] = nullable("boolean", path, note)
	case reflect.Int64:
		s["type"] = nullable("integer", path, note)
	default:
		return nil, fmt.Errorf("manifest schema: %s has kind %s", path, t.Kind())
	}
	for k, v := range note.extra {
		s[k] = v
	}
	return s, nil
}

// nullable allows null besides kind where the loader does: an empty value
// ("auth:" with nothing after it) means the key is left out. A required
// key must hold a value; list items are values, never left out.
func nullable(kind, path string, note schemaNote) any {
	if note.required || path == "" || strings.HasSuffix(path, "[]") {
		return kind
	}
	return []string{kind, "null"}
}
