package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

const (
	templateNone   = "none"
	templateCodex  = "codex"
	templateClaude = "claude"
)

// Paths of manifest keys that errors about the template point at.
const (
	forwardPath   = "agent_provider.forward_host_credentials"
	refreshPath   = "agent_provider.refresh_host_credentials"
	authTokenPath = "agent_provider.auth_token"
)

// manifest is a decoded manifest whose fields have each been checked on
// their own; compile then merges it with its template.
type manifest struct {
	name      string
	template  string // "" when the manifest names no valid template
	forward   bool
	refresh   bool
	authToken string
	routes    []routeSpec
	// dlp is the bottle's dlp setting, defaults filled in; each route
	// applies its own dlp overrides to it.
	dlp      DLP
	dlpRules DLPRules
}

// routeSpec is a route before slots are assigned.
type routeSpec struct {
	path     string // YAML path of a manifest route; "" for a template route
	template string // the template that made the route; "" for a manifest route
	route    Route  // Auth stays nil until assignSlots
	auth     *authSpec
	// widen makes a manifest route's matches add to the template's instead
	// of narrowing them.
	widen bool
	// dlp is the route's own dlp keys, applied to the bottle's setting
	// once templates are merged.
	dlp dlpOverride
}

// authSpec is a route's credential, named by its source: the slot it
// lands in depends on every other route, so it is chosen later.
type authSpec struct {
	scheme string
	header string
	source Source
	// path is the manifest key that names the source: where a problem
	// reading the source is reported.
	path string
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9-]+$`)
	envNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
)

func (l *loader) manifest() manifest {
	raw := l.doc.raw
	p := raw.AgentProvider
	m := manifest{
		name:      raw.Name,
		template:  l.template(p.Template),
		forward:   p.ForwardHostCredentials,
		refresh:   p.RefreshHostCredentials,
		authToken: p.AuthToken,
	}
	l.name(raw.Name)
	l.provider(m)
	m.dlp, m.dlpRules = l.bottleDLP(raw.DLP)
	m.routes = l.routes(raw.Egress.Routes)
	return m
}

func (l *loader) name(name string) {
	const path = "name"
	switch {
	case !l.required(path, name):
	case len(name) > 63:
		l.errorf(path, "must be at most 63 characters, not %d", len(name))
	case !nameRE.MatchString(name):
		l.errorf(path, "%q may hold only a-z, 0-9 and -", name)
	}
}

// template returns the manifest's template, or "" when it names none
// that exists (already reported).
func (l *loader) template(t string) string {
	const path = "agent_provider.template"
	switch {
	case l.doc.isBad(path):
		return ""
	case t == "":
		return templateNone
	case t == templateNone || t == templateCodex || t == templateClaude:
		return t
	}
	l.errorf(path, "%q is not one of codex, claude, none", t)
	return ""
}

// provider checks the agent_provider keys that depend on the template. An
// invalid template is already reported, so nothing is checked against it.
func (l *loader) provider(m manifest) {
	if m.template == "" {
		return
	}
	if m.authToken != "" {
		if m.template != templateClaude {
			l.errorf(authTokenPath, "only the claude template takes auth_token")
		} else {
			l.envName(authTokenPath, m.authToken)
		}
	}
	if m.refresh && (m.template != templateCodex || !m.forward) {
		l.errorf(refreshPath, "only a codex bottle with forward_host_credentials: true has a host login to refresh")
	}
	if !m.forward {
		return
	}
	switch m.template {
	case templateNone:
		l.errorf(forwardPath, "template none has no host credentials to forward; set template to codex or claude")
	}
}

// envName checks a variable name without ever echoing it: a token pasted
// where its variable's name belongs must not reach logs. Requiring upper
// case also catches most pasted tokens, which mix in lower case.
func (l *loader) envName(path, name string) {
	if !envNameRE.MatchString(name) {
		l.errorf(path, "must name a host environment variable (A-Z, 0-9 and _, not starting with a digit), never hold the token itself")
	}
}

func (l *loader) routes(raws []rawRoute) []routeSpec {
	specs := make([]routeSpec, 0, len(raws))
	first := map[string]string{} // host → path of the route naming it first
	for i, r := range raws {
		path := fmt.Sprintf("egress.routes[%d]", i)
		s := l.route(path, r)
		if prev, dup := first[r.Host]; dup {
			l.errorf(path+".host", "%s is already routed by %s; list each host once", r.Host, prev)
		} else if r.Host != "" {
			first[r.Host] = path
		}
		specs = append(specs, s)
	}
	return specs
}

func (l *loader) route(path string, r rawRoute) routeSpec {
	l.host(path+".host", r.Host)
	s := routeSpec{path: path, route: Route{Host: r.Host, TLS: l.tls(path+".tls", r.TLS)}}
	s.auth = l.auth(path+".auth", r.Auth)
	s.route.Matches = l.matches(path+".matches", r.Matches)
	s.dlp = l.routeDLP(path+".dlp", r.DLP)
	passthrough := s.route.TLS == Passthrough
	if passthrough {
		l.passthrough(path, r)
	}
	s.route.Upstream = l.upstream(path+".upstream", r.Upstream, passthrough)
	return s
}

func (l *loader) host(path, host string) {
	if !l.required(path, host) {
		return
	}
	if problem := hostProblem(host); problem != "" {
		l.errorf(path, "%q %s", host, problem)
	}
}

func (l *loader) tls(path, mode string) TLSMode {
	switch TLSMode(mode) {
	case "", Intercept:
		return Intercept
	case Passthrough:
		return Passthrough
	}
	l.errorf(path, "%q is not one of intercept, passthrough", mode)
	return Intercept
}

func (l *loader) auth(path string, a *rawAuth) *authSpec {
	if a == nil {
		return nil
	}
	header := strings.ToLower(a.Header)
	switch {
	case a.Scheme != "" && a.Header != "":
		l.errorf(path+".header", "set scheme (an Authorization scheme) or header (a header carrying the raw value), not both")
	case a.Header != "":
		if !headerNameRE.MatchString(header) || reservedHeaders[header] {
			l.errorf(path+".header", "%q cannot carry a credential: use a header name such as x-api-key", a.Header)
		}
	case l.required(path+".scheme", a.Scheme) && a.Scheme != "Bearer" && a.Scheme != "token":
		l.errorf(path+".scheme", "%q is not one of Bearer, token", a.Scheme)
	}
	source, at := l.authSource(path, a)
	return &authSpec{scheme: a.Scheme, header: header, source: source, path: at}
}

// headerNameRE is an HTTP field name as egressgate accepts it for a
// credential: lower-case token characters, no pseudo-headers.
var headerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// reservedHeaders carry framing or routing, or are stripped on every route;
// a credential in them would break the request or vanish.
var reservedHeaders = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"upgrade": true, "te": true, "keep-alive": true, "proxy-connection": true, "proxy-authorization": true,
}

// passthrough rejects what Envoy cannot do for a host it only tunnels:
// it never sees the requests, so it can neither add a credential, nor
// match paths, nor verify the upstream's certificate, nor scan bodies.
func (l *loader) passthrough(path string, r rawRoute) {
	if r.Auth != nil {
		l.errorf(path+".tls", "a route with auth cannot be passthrough: Envoy cannot add a credential inside a TLS tunnel")
	}
	if len(r.Matches) > 0 {
		l.errorf(path+".matches", "a passthrough route cannot have matches: Envoy cannot see paths inside a TLS tunnel")
	}
	if r.Upstream != nil && r.Upstream.CAFile != "" {
		l.errorf(path+".upstream.ca_file", "a passthrough route cannot have ca_file: inside a TLS tunnel the agent, not Envoy, verifies the upstream")
	}
	l.passthroughDLP(path+".dlp", r.DLP)
}

func (l *loader) matches(path string, raws []rawMatch) []Match {
	if len(raws) == 0 {
		return nil
	}
	out := make([]Match, len(raws))
	for i, m := range raws {
		out[i] = l.match(fmt.Sprintf("%s[%d]", path, i), m)
	}
	return out
}

// knownMethods are the methods a match may name, as listed in errors.
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func (l *loader) match(path string, m rawMatch) Match {
	// An empty match allows everything, which is never what was meant.
	if len(m.Paths) == 0 && len(m.Methods) == 0 && !l.doc.isBad(path+".paths") && !l.doc.isBad(path+".methods") {
		l.errorf(path, "set paths, methods or both; leave matches out to allow every request")
	}
	var out Match
	for i, p := range m.Paths {
		out.Paths = append(out.Paths, l.pathMatch(fmt.Sprintf("%s.paths[%d]", path, i), p))
	}
	for i, method := range m.Methods {
		upper := strings.ToUpper(method)
		if !slices.Contains(knownMethods, upper) {
			l.errorf(fmt.Sprintf("%s.methods[%d]", path, i), "%q is not one of %s", method, strings.Join(knownMethods, ", "))
			continue
		}
		if !slices.Contains(out.Methods, upper) {
			out.Methods = append(out.Methods, upper)
		}
	}
	return out
}

func (l *loader) pathMatch(path string, p rawPath) PathMatch {
	if l.required(path+".type", p.Type) && p.Type != string(PathPrefix) && p.Type != string(PathExact) {
		l.errorf(path+".type", "%q is not one of prefix, exact", p.Type)
	}
	if l.required(path+".value", p.Value) {
		if problem := pathProblem(p.Value); problem != "" {
			l.errorf(path+".value", "%q %s", p.Value, problem)
		}
	}
	return PathMatch{Type: PathType(p.Type), Value: p.Value}
}

// required reports whether a string field has a value, reporting it when
// it has none, unless a wrong type already explains why.
func (l *loader) required(path, value string) bool {
	if value != "" {
		return true
	}
	if !l.doc.isBad(path) {
		l.errorf(path, "required")
	}
	return false
}

// errorf reports a problem with the value at path, on the line where path
// (or, when it is missing, its parent) appears in the manifest.
func (l *loader) errorf(path, format string, args ...any) {
	l.errs.add(l.doc.line(path), "%s%s", pathPrefix(path), fmt.Sprintf(format, args...))
}
