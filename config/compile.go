package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Template hosts. Codex talks to ChatGPT's backend with the ChatGPT access
// token and refreshes logins at auth.openai.com.
const (
	codexChatHost      = "chatgpt.com"
	codexChatPrefix    = "/backend-api/"
	codexAuthHost      = "auth.openai.com"
	claudeAPIHost      = "api.anthropic.com"
	codexAuthFile      = "auth.json"
	defaultCodexSubdir = ".codex"
)

// compile merges the manifest with its template, binds credentials to
// slots and reads the slots' values.
func (l *loader) compile(m manifest) *Policy {
	routes := l.merge(l.templateRoutes(m), m.routes)
	slots, namedAt := assignSlots(routes)
	bindAnswers(routes)
	loginErrs := l.fillSlots(slots, namedAt)
	p := &Policy{
		Name:                   m.name,
		Template:               m.template,
		ForwardHostCredentials: m.forward,
		RefreshHostCredentials: m.refresh,
		Slots:                  slots,
		DLPRules:               m.dlpRules,
	}
	p.hostLoginErrors = loginErrs
	for _, r := range routes {
		r.route.DLP = routeDLP(m.dlp, r)
		p.Routes = append(p.Routes, r.route)
	}
	p.warnings = l.warnings(p, namedAt)
	// Sorted so xds output is deterministic whatever the manifest order.
	slices.SortFunc(p.Routes, func(a, b Route) int { return strings.Compare(a.Host, b.Host) })
	return p
}

// warnings are what makes a valid policy refuse more than its author
// likely meant: a credential that is empty now, a bottle with no route.
func (l *loader) warnings(p *Policy, namedAt []string) []Error {
	var out []Error
	if len(p.Routes) == 0 {
		out = append(out, Error{File: l.errs.file, Line: l.doc.line("egress.routes"),
			Msg: "no routes: the bottle allows no host, so every request of its agent is refused; add egress.routes or an agent_provider.template"})
	}
	for i, s := range p.Slots {
		var empty string
		switch {
		case s.Present():
			continue
		case s.Source.Kind == SourceEnv:
			empty = s.Source.Ref + " is not set or empty in this environment"
		case s.Source.Kind == SourceFile:
			empty = s.Source.Ref + " is missing or empty"
		default:
			continue // a host login that cannot be used is an error
		}
		var hosts []string
		for _, r := range p.Routes {
			if r.Auth != nil && r.Auth.Slot == s.Name {
				hosts = append(hosts, r.Host)
			}
		}
		out = append(out, Error{File: l.errs.file, Line: l.doc.line(namedAt[i]),
			Msg: fmt.Sprintf("%s, so requests to %s are refused until it holds the token; %s",
				empty, strings.Join(hosts, ", "), s.Source.Fix())})
	}
	return out
}

// routeDLP is a route's DLP: the bottle's setting with the route's
// overrides applied. Template routes have none of their own unless a
// manifest route merges into them. Envoy cannot see inside a passthrough
// tunnel, so a passthrough route's is off whatever the bottle says.
func routeDLP(bottle DLP, r routeSpec) DLP {
	if r.route.TLS == Passthrough {
		return DLP{Mode: DLPOff}
	}
	return r.dlp.apply(bottle)
}

func (l *loader) templateRoutes(m manifest) []routeSpec {
	switch m.template {
	case templateCodex:
		return l.codexRoutes(m.forward)
	case templateClaude:
		return l.claudeRoutes(m)
	default:
		return nil
	}
}

func (l *loader) codexRoutes(forward bool) []routeSpec {
	chat := routeSpec{template: templateCodex, route: Route{
		Host:    codexChatHost,
		TLS:     Intercept,
		Matches: []Match{{Paths: []PathMatch{{Type: PathPrefix, Value: codexChatPrefix}}}},
	}}
	// Invariant 5: unless forwarding is on, the Codex home is not even
	// located, so auth.json cannot be opened by mistake further down.
	if forward {
		if home, ok := l.codexHome(); ok {
			src := Source{Kind: SourceCodex, Ref: filepath.Join(home, codexAuthFile)}
			chat.auth = &authSpec{scheme: "Bearer", source: src, path: forwardPath}
		}
	}
	return []routeSpec{chat, codexAuthRoute(chat.auth != nil)}
}

// codexAuthRoute is auth.openai.com for Codex. With the host's login
// forwarded, only the refresh call is allowed, and egressgate answers it
// itself (bindAnswers ties it to the login's slot): the agent holds only a
// placeholder refresh token, which must never reach OpenAI. Without, the
// agent logs in inside the bottle with device auth, which needs the device
// endpoints and the token exchange. The manifest may allow more paths.
func codexAuthRoute(forwarded bool) routeSpec {
	m := []Match{{Paths: []PathMatch{{Type: PathPrefix, Value: "/api/accounts/deviceauth/"}, {Type: PathExact, Value: codexTokenPath}}}}
	if forwarded {
		m = []Match{{Paths: []PathMatch{{Type: PathExact, Value: codexTokenPath}}, Methods: []string{"POST"}, Answer: &Answer{Kind: AnswerCodexRefresh}}}
	}
	return routeSpec{template: templateCodex, widen: true, route: Route{Host: codexAuthHost, TLS: Intercept, Matches: m}}
}

const codexTokenPath = "/oauth/token"

// bindAnswers points each refresh answer at the slot holding the host's
// Codex login, once slots are assigned.
func bindAnswers(routes []routeSpec) {
	var slot string
	for _, r := range routes {
		if r.route.Host == codexChatHost && r.route.Auth != nil {
			slot = r.route.Auth.Slot
		}
	}
	for _, r := range routes {
		for _, m := range r.route.Matches {
			if m.Answer != nil && m.Answer.Kind == AnswerCodexRefresh {
				m.Answer.Slot = slot
			}
		}
	}
}

// codexHome is where Codex keeps auth.json, found the way Codex finds it:
// --codex-home, else $CODEX_HOME, else $HOME/.codex.
func (l *loader) codexHome() (string, bool) {
	return l.cliHome(l.opts.CodexHome, "CODEX_HOME", defaultCodexSubdir,
		"cannot find the Codex home: pass --codex-home, or set CODEX_HOME or HOME")
}

// cliHome is a CLI's home directory as the CLI finds it: flag, else the
// environment variable, else that subdirectory of $HOME. It is made
// absolute because the path is shown in status and errors. missing is
// the error when none of them is set.
func (l *loader) cliHome(flag, envVar, subdir, missing string) (string, bool) {
	home := flag
	if home == "" {
		home = l.env(envVar)
	}
	if home == "" {
		if h := l.env("HOME"); h != "" {
			home = filepath.Join(h, subdir)
		}
	}
	if home == "" {
		l.errorf(forwardPath, "%s", missing)
		return "", false
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		l.errorf(forwardPath, "cannot make %s absolute: %v", home, err)
		return "", false
	}
	return abs, true
}

func (l *loader) env(key string) string {
	v, _ := l.opts.LookupEnv(key)
	return v
}

// claudeRoutes is api.anthropic.com for Claude Code. Forwarded, it carries
// the host token named by auth_token, or else the host's own Claude Code
// login; as for Codex, the login is not even located unless forwarded.
func (l *loader) claudeRoutes(m manifest) []routeSpec {
	r := routeSpec{template: templateClaude, route: Route{Host: claudeAPIHost, TLS: Intercept}}
	switch {
	case m.forward && m.authToken != "":
		r.auth = &authSpec{scheme: "Bearer", source: Source{Kind: SourceEnv, Ref: m.authToken}, path: authTokenPath}
	case m.forward:
		if path, ok := l.claudeCredentials(); ok {
			r.auth = &authSpec{scheme: "Bearer", source: Source{Kind: SourceClaude, Ref: path}, path: forwardPath}
		}
	}
	return []routeSpec{r}
}

// readLogin reads a host login file of either kind.
func (l *loader) readLogin(s Source) hostLogin {
	if s.Kind == SourceClaude {
		return l.readClaudeLogin(s.Ref)
	}
	return l.readCodexAuth(s.Ref)
}

// merge returns the template's routes, each merged with the manifest route
// for its host, followed by the other manifest routes in manifest order.
// That order decides slot numbers.
func (l *loader) merge(tmpl, own []routeSpec) []routeSpec {
	routes := slices.Clone(tmpl)
	for _, r := range own {
		i := slices.IndexFunc(tmpl, func(t routeSpec) bool { return t.route.Host == r.route.Host })
		if i < 0 {
			routes = append(routes, r)
			continue
		}
		routes[i] = l.mergeRoute(routes[i], r)
	}
	return routes
}

// mergeRoute applies manifest route r to template route t. The manifest
// may send the route elsewhere (upstream) and narrow it (matches); it may
// never change whose credential it carries or stop Envoy seeing inside.
func (l *loader) mergeRoute(t, r routeSpec) routeSpec {
	host := t.route.Host
	if r.auth != nil {
		l.errorf(r.path+".auth", "auth for %s comes from the %s template", host, t.template)
	}
	if r.route.TLS == Passthrough {
		l.errorf(r.path+".tls", "%s is intercepted by the %s template; it cannot be passthrough", host, t.template)
	}
	// Templates set no upstream nor dlp, so the manifest's replace nothing.
	t.route.Upstream = r.route.Upstream
	t.dlp = r.dlp
	if t.widen {
		// The template's matches stay first, so its answers win.
		t.route.Matches = append(t.route.Matches, r.route.Matches...)
		return t
	}
	if len(r.route.Matches) > 0 {
		l.checkNarrows(t, r)
		t.route.Matches = r.route.Matches
	}
	return t
}

// checkNarrows reports manifest matches that would allow a path the
// template does not. Template paths are all prefixes.
func (l *loader) checkNarrows(t, r routeSpec) {
	var prefixes []string
	for _, m := range t.route.Matches {
		for _, p := range m.Paths {
			prefixes = append(prefixes, p.Value)
		}
	}
	if len(prefixes) == 0 {
		return // the template allows every path
	}
	allowed := strings.Join(prefixes, " or ")
	for i, m := range r.route.Matches {
		path := fmt.Sprintf("%s.matches[%d]", r.path, i)
		if len(m.Paths) == 0 {
			l.errorf(path, "list paths: the %s template allows only paths under %s on %s", t.template, allowed, t.route.Host)
			continue
		}
		for j, p := range m.Paths {
			if pathProblem(p.Value) != "" || underAny(p.Value, prefixes) {
				continue // a malformed value is already reported
			}
			l.errorf(fmt.Sprintf("%s.paths[%d].value", path, j), "%q is not under %s, which the %s template allows on %s",
				p.Value, allowed, t.template, t.route.Host)
		}
	}
}

func underAny(value string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(value, p) })
}

// assignSlots gives each distinct credential source one slot, numbered in
// order of first appearance over routes, and binds each route to its slot.
// Routes sharing a source share the slot, so one value serves them all.
// namedAt[i] is the manifest key that first named slot i's source.
func assignSlots(routes []routeSpec) (slots []Slot, namedAt []string) {
	index := map[Source]int{}
	for i := range routes {
		a := routes[i].auth
		if a == nil {
			continue
		}
		n, ok := index[a.source]
		if !ok {
			n = len(slots)
			index[a.source] = n
			slots = append(slots, Slot{Name: SlotName(n), Source: a.source})
			namedAt = append(namedAt, a.path)
		}
		routes[i].route.Auth = &Auth{Scheme: a.scheme, Header: a.header, Slot: SlotName(n)}
	}
	return slots, namedAt
}

// fillSlots reads each slot's value from its source, reporting a problem
// at the key that named the source. A host login that cannot be used
// leaves its slot empty with a Problem, and is returned as an error at
// that key for the callers that must refuse it (Policy.HostLoginError).
func (l *loader) fillSlots(slots []Slot, namedAt []string) []Error {
	var loginErrs []Error
	for i := range slots {
		s := &slots[i]
		switch s.Source.Kind {
		case SourceEnv:
			// Unset is not an error: the slot stays empty and ext_proc
			// refuses that route with a reason naming Source.AgentFix(), while
			// every other route keeps working.
			s.Value = NewSecret(l.env(s.Source.Ref))
		case SourceFile:
			s.Value = l.readTokenFile(namedAt[i], s.Source.Ref)
		case SourceCodex, SourceClaude:
			login := l.readLogin(s.Source)
			s.Value, s.Expiry = login.value, login.expiry
			if login.problem != "" {
				s.Value, s.Problem = Secret{}, login.problem
			}
			if msg := login.startupProblem(l.opts.Now()); msg != "" {
				loginErrs = append(loginErrs, Error{File: l.errs.file, Line: l.doc.line(namedAt[i]), Msg: msg})
			}
		}
	}
	return loginErrs
}
