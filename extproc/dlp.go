package extproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/extprocapi"
)

// MaxMessageSize is the largest ext_proc message the server must accept:
// a scanned route's whole buffered body (config.MaxDLPMaxBody at most)
// plus its framing.
const MaxMessageSize = config.MaxDLPMaxBody + 1<<20

// dlpInputs are what the bottle's scanner is built from besides its slot
// values: the manifest's rules and the canaries agent-env planted.
type dlpInputs struct {
	rules    config.DLPRules
	canaries []dlp.Named
	// held are credentials the egress holds besides the slot values (the
	// host's Codex refresh token, when egressgate refreshes the login).
	held []dlp.Named
}

// detector is the bottle's scanner with the fingerprints the manifest
// allows. It is immutable; rebuildScanner publishes a fresh one.
type detector struct {
	scanner *dlp.Scanner
	allow   map[string]bool
}

// SetDLPRules replaces the bottle's extra detection rules and allowed
// fingerprints (config.Policy.DLPRules) and rebuilds the scanner.
func (s *Server) SetDLPRules(r config.DLPRules) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	s.dlpIn.rules = r
	s.rebuildScanner()
}

// SetCanaries replaces the canaries planted in the bottle's agent
// environment (package canary) and rebuilds the scanner.
func (s *Server) SetCanaries(c []dlp.Named) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	s.dlpIn.canaries = slices.Clone(c)
	s.rebuildScanner()
}

// SetHeldSecrets replaces the credentials the egress holds for the bottle
// besides its slot values, found as known secrets like them, and rebuilds
// the scanner.
func (s *Server) SetHeldSecrets(h []dlp.Named) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	s.dlpIn.held = slices.Clone(h)
	s.rebuildScanner()
}

// rebuildScanner builds the scanner from the current slots, rules and
// canaries; s.setSlots is held. The slot values are the known secrets: a
// host credential may leave only in its own route's injected header. A
// slot value too short to match safely is left out, and a rule set the
// scanner refuses (config validates patterns, so only a skew between the
// two could do that) leaves the previous detector in place, logged: the
// well-known formats and the other secrets must keep being found.
func (s *Server) rebuildScanner() {
	cfg := dlp.Config{Canaries: s.dlpIn.canaries}
	if t := s.slots.Load(); t != nil {
		for name, e := range *t {
			if len(e.slot.Value.Reveal()) >= dlp.MinLiteralLen {
				cfg.KnownSecrets = append(cfg.KnownSecrets, dlp.Named{Name: name, Value: e.slot.Value})
			}
		}
		slices.SortFunc(cfg.KnownSecrets, func(a, b dlp.Named) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, h := range s.dlpIn.held {
		if len(h.Value.Reveal()) >= dlp.MinLiteralLen {
			cfg.KnownSecrets = append(cfg.KnownSecrets, h)
		}
	}
	for _, p := range s.dlpIn.rules.Patterns {
		cfg.Patterns = append(cfg.Patterns, dlp.Pattern{Name: p.Name, Literal: p.Literal, Regex: p.Regex})
	}
	sc, err := dlp.New(cfg)
	if err != nil {
		s.logger.Error("dlp rules not applied; the previous ones stay", "error", err)
		return
	}
	d := &detector{scanner: sc, allow: make(map[string]bool, len(s.dlpIn.rules.Allow))}
	for _, fp := range s.dlpIn.rules.Allow {
		d.allow[fp] = true
	}
	s.detector.Store(d)
}

// Detection is one secret found in a request, as metrics and logs see it:
// names and a fingerprint, never the value.
type Detection struct {
	Host string
	// Where is "path", "header", "body", "trailer" or "websocket".
	Where string
	// Kind, Name, Fingerprint and Encoding are dlp.Finding's.
	Kind, Name, Fingerprint, Encoding string
	// Action is "block" or "log".
	Action string
}

// Where a finding was made.
const (
	wherePath      = "path"
	whereHeader    = "header"
	whereBody      = "body"
	whereTrailer   = "trailer"
	whereWebSocket = "websocket"
)

// dlpState is one scanned request's detection state, kept across its
// stream's messages.
type dlpState struct {
	on       bool
	mode     config.DLPMode
	large    config.LargeBodyAction
	max      int    // body bytes scanned
	encoding string // the request's content-encoding
	// upgrade marks a WebSocket request: its body is frames, streamed.
	upgrade bool
	ws      *wsScanner
	found   []Detection
	// unscanned is set once a body longer than the scanned part passed.
	unscanned bool
	// nReported is how many of found were logged and counted already.
	nReported int
}

func newDLPState(b binding) dlpState {
	if b.DLP == "" {
		return dlpState{}
	}
	return dlpState{on: true, mode: config.DLPMode(b.DLP), large: config.LargeBodyAction(b.DLPLarge), max: b.dlpMax}
}

// certain reports whether a finding is refused in every mode: a known
// secret or a canary is never a false positive, and the allow list does not
// apply to them (allowing a host credential out would defeat the slot).
func certain(f dlp.Finding) bool {
	return f.Kind == dlp.KindKnownSecret || f.Kind == dlp.KindCanary
}

// record keeps the findings of one part of the request that the allow list
// does not excuse, and reports the one that must block it, if any: a
// canary or known secret first, since it says most. A format match of the
// same value as a canary or known secret (a canary shaped like an AWS key)
// is that finding, not another.
func (st *dlpState) record(d *detector, host, where string, fs []dlp.Finding) *Detection {
	sure := map[string]bool{}
	for _, f := range fs {
		if certain(f) {
			sure[f.Fingerprint] = true
		}
	}
	block, blockSure := -1, false
	for _, f := range fs {
		if !certain(f) && (d.allow[f.Fingerprint] || sure[f.Fingerprint]) {
			continue
		}
		action := "log"
		if st.mode == config.DLPBlock || certain(f) {
			action = "block"
		}
		st.found = append(st.found, Detection{Host: host, Where: where, Kind: f.Kind, Name: f.Name,
			Fingerprint: f.Fingerprint, Encoding: f.Encoding, Action: action})
		if action == "block" && (block < 0 || certain(f) && !blockSure) {
			block, blockSure = len(st.found)-1, certain(f)
		}
	}
	if block < 0 {
		return nil
	}
	det := st.found[block]
	return &det
}

// scanHeaders scans what the request would send upstream in its URL and
// headers: everything but the headers ext_proc removes (the strip list,
// x-envoy-*, method overrides), which never leave. The agent's own
// Authorization (a placeholder, or anything else) is removed, not sent, so
// it is no leak. The path is scanned apart so the record can say where.
func (s *Server) scanHeaders(st *dlpState, d *detector, b binding, h headerMap, where string) *Detection {
	var path, rest []byte
	for _, hv := range h.GetHeaders() {
		name := strings.ToLower(hv.GetKey())
		v := hv.GetRawValue()
		if v == nil {
			v = []byte(hv.GetValue())
		}
		switch {
		case slices.Contains(b.strip, name), strings.HasPrefix(name, extprocapi.EnvoyHeaderPrefix),
			slices.Contains(extprocapi.MethodOverrideHeaders, name):
			continue
		case name == extprocapi.HeaderPath:
			path = v
			continue
		case name == "content-encoding":
			st.encoding = string(v)
		case name == "upgrade" && strings.EqualFold(string(v), "websocket"):
			st.upgrade = true
		}
		rest = append(append(append(append(rest, name...), ": "...), v...), '\n')
	}
	var block *Detection
	if len(path) > 0 {
		block = st.record(d, b.Host, wherePath, d.scanner.Scan(path))
	}
	if blk := st.record(d, b.Host, where, d.scanner.Scan(rest)); block == nil {
		block = blk
	}
	return block
}

// dlpHeaders scans a scanned route's request line and headers. It returns
// the refusal when they carry a secret the route must not let out, else
// nil, and the detections go with whatever the credential decision answers.
func (s *Server) dlpHeaders(ctx context.Context, st *dlpState, b binding, r request, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	d := s.detector.Load()
	block := s.scanHeaders(st, d, b, h.GetHeaders(), whereHeader)
	s.report(ctx, st)
	if block != nil {
		return s.refuseSecret(ctx, st, b, r, block)
	}
	if st.upgrade {
		st.ws = newWSScanner(d.scanner)
	}
	return nil
}

// dlpBody scans a scanned route's body. Envoy buffered it (up to the
// route's limit) and sends it in one message; a WebSocket's frames arrive
// one chunk at a time instead.
func (s *Server) dlpBody(ctx context.Context, st *dlpState, b binding, r request, body *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	d := s.detector.Load()
	if st.ws != nil {
		fs, err := st.ws.write(body.GetBody())
		if block := st.record(d, b.Host, whereWebSocket, fs); block != nil || err != nil {
			s.report(ctx, st)
			if block == nil {
				return s.refuseUnreadable(ctx, st, b, r, whereWebSocket, err)
			}
			return s.refuseSecret(ctx, st, b, r, block)
		}
		if len(fs) > 0 {
			s.report(ctx, st)
		}
		return bodyContinue(st)
	}
	// Envoy buffers at least the route's limit, and more when the
	// listener's own limit is higher; the limit is what the manifest said.
	// A body cut at Envoy's limit arrives with end_of_stream false and at
	// least st.max bytes; a shorter one without end_of_stream is whole,
	// with trailers to follow.
	data := body.GetBody()
	partial := len(data) > st.max || (len(data) == st.max && !body.GetEndOfStream())
	if partial {
		data = data[:st.max]
	}
	fs, err := scanBody(d.scanner, data, st.encoding, partial)
	block := st.record(d, b.Host, whereBody, fs)
	if partial && block == nil && err == nil {
		st.unscanned = true
	}
	s.report(ctx, st)
	switch {
	case block != nil:
		return s.refuseSecret(ctx, st, b, r, block)
	case err != nil:
		// In log mode too: a body the scanner cannot read may hold a
		// known secret or a canary, which no mode lets out (fail closed).
		return s.refuseUnreadable(ctx, st, b, r, whereBody, err)
	case partial && st.large == config.LargeBodyBlock:
		return s.refuseLarge(ctx, st, b, r, st.max)
	}
	return bodyContinue(st)
}

// scanBody scans a buffered body. A partial body (longer than the route's
// limit, cut there) is scanned as far as it goes: a compressed one cut
// short is not corrupt, so only what it decoded counts.
func scanBody(sc *dlp.Scanner, body []byte, encoding string, partial bool) ([]dlp.Finding, error) {
	if ce := strings.ToLower(strings.TrimSpace(encoding)); ce == "" || ce == "identity" {
		// The whole buffered body at once: a stream would first copy it
		// into its own buffer.
		return sc.Scan(body), nil
	}
	if !partial {
		return sc.ScanEncoded(body, encoding)
	}
	stream, err := sc.NewEncodedStream(encoding)
	if err != nil {
		return nil, err
	}
	_, werr := stream.Write(body)
	fs := stream.Findings()
	_, _ = stream.Close()
	if errors.Is(werr, dlp.ErrTooLarge) || (werr != nil && !errors.Is(werr, dlp.ErrUnsupportedEncoding)) {
		return fs, werr
	}
	return fs, nil
}

// report logs and counts the detections not yet reported.
func (s *Server) report(ctx context.Context, st *dlpState) {
	for i := st.nReported; i < len(st.found); i++ {
		det := st.found[i]
		s.onDetection(det)
		s.logger.LogAttrs(ctx, slog.LevelWarn, "dlp: secret in request",
			slog.String("host", det.Host), slog.String("where", det.Where), slog.String("kind", det.Kind),
			slog.String("name", det.Name), slog.String("fingerprint", det.Fingerprint),
			slog.String("encoding", det.Encoding), slog.String("action", det.Action))
	}
	st.nReported = len(st.found)
}

// metadata is the detections as dynamic metadata for the request's access
// log entries, from which its audit record is built; nil when there is
// nothing to say.
func (st *dlpState) metadata() *structpb.Struct {
	if len(st.found) == 0 && !st.unscanned {
		return nil
	}
	fields := map[string]*structpb.Value{}
	if len(st.found) > 0 {
		entries := make([]string, len(st.found))
		for i, d := range st.found {
			entries[i] = strings.Join([]string{d.Where, d.Kind, d.Name, d.Fingerprint, d.Action}, ":")
		}
		fields[extprocapi.DLPFindingsKey] = structpb.NewStringValue(strings.Join(entries, ","))
	}
	if st.unscanned {
		fields[extprocapi.DLPUnscannedKey] = structpb.NewStringValue("true")
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		extprocapi.DLPMetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: fields}),
	}}
}

// withMetadata attaches the request's detections to a response.
func withMetadata(resp *extprocv3.ProcessingResponse, st *dlpState) *extprocv3.ProcessingResponse {
	if st.on {
		resp.DynamicMetadata = st.metadata()
	}
	return resp
}

func bodyContinue(st *dlpState) *extprocv3.ProcessingResponse {
	return withMetadata(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{}},
	}}, st)
}

// Reason codes of DLP refusals (Envoy's response code details, so the audit
// record's reason).
const (
	codeSecret     = "egressgate_dlp_secret"
	codeUnreadable = "egressgate_dlp_unreadable"
	codeTooLarge   = "egressgate_dlp_body_too_large"
)

// refuseSecret refuses a request carrying a secret. The agent's client
// shows the refusal to its person (render), so it says what was found,
// where, the fingerprint a person can allow, and never the value.
func (s *Server) refuseSecret(ctx context.Context, st *dlpState, b binding, r request, det *Detection) *extprocv3.ProcessingResponse {
	what := det.Kind
	if det.Name != "" {
		what += " " + det.Name
	}
	reason := fmt.Sprintf("request to %s refused: its %s carries a secret (%s, fingerprint %s)", b.Host, det.Where, what, det.Fingerprint)
	var fix string
	switch det.Kind {
	case dlp.KindCanary:
		fix = "it is a canary planted in this agent's environment, never a real credential: something read the agent's credentials and tried to send them out; check what the agent was asked to do"
	case dlp.KindKnownSecret:
		fix = "it is a credential the egress holds for the host, which may leave only in its own route's header; check what the agent was asked to do"
	default:
		fix = fmt.Sprintf("if it is not a secret, a person can let it through by adding %q to dlp.allow in the bottle's manifest", det.Fingerprint)
	}
	return s.refuseDLP(ctx, st, b, r, codeSecret, reason, fix)
}

func (s *Server) refuseUnreadable(ctx context.Context, st *dlpState, b binding, r request, where string, err error) *extprocv3.ProcessingResponse {
	reason := fmt.Sprintf("request to %s refused: its %s could not be inspected for secrets (%v)", b.Host, where, err)
	return s.refuseDLP(ctx, st, b, r, codeUnreadable, reason, "send it uncompressed or with gzip, deflate or br")
}

func (s *Server) refuseLarge(ctx context.Context, st *dlpState, b binding, r request, scanned int) *extprocv3.ProcessingResponse {
	reason := fmt.Sprintf("request to %s refused: its body is longer than the %d bytes the egress inspects for secrets", b.Host, scanned)
	return s.refuseDLP(ctx, st, b, r, codeTooLarge, reason, "send a smaller body, or a person can set dlp.large_body: pass (or a larger max_body_bytes) for this route in the bottle's manifest")
}

func (s *Server) refuseDLP(ctx context.Context, st *dlpState, b binding, r request, code, reason, fix string) *extprocv3.ProcessingResponse {
	d := &denial{status: typev3.StatusCode_Forbidden, code: code, reason: reason, fix: fix, request: true}
	s.observe("deny")
	s.logger.LogAttrs(ctx, slog.LevelWarn, "ext_proc request denied",
		slog.String("host", b.Host), slog.String("action", "deny"), slog.String("reason", code))
	return withMetadata(render(d, b, r), st)
}

// dlpTrailers scans a scanned route's request trailers.
func (s *Server) dlpTrailers(ctx context.Context, st *dlpState, b binding, r request, t *extprocv3.HttpTrailers) *extprocv3.ProcessingResponse {
	d := s.detector.Load()
	block := s.scanHeaders(st, d, b, t.GetTrailers(), whereTrailer)
	s.report(ctx, st)
	if block != nil {
		return s.refuseSecret(ctx, st, b, r, block)
	}
	return nil
}
