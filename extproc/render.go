package extproc

import (
	"encoding/json"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/egressgate/egressgate/extprocapi"
)

// request is what a refusal's shape depends on: who is asking and for
// what. It is read from the request's headers, which the agent controls;
// nothing here decides whether a credential is sent, only how a refusal
// is worded so that the agent's CLI shows it to its person.
type request struct {
	method string
	path   string
	// anthropic: the request speaks the Anthropic API (an SDK sends
	// anthropic-version on every call).
	anthropic bool
	// account is chatgpt-account-id, which Codex sends from its login.
	account string
}

func requestOf(h *extprocv3.HttpHeaders) request {
	var r request
	for _, hv := range h.GetHeaders().GetHeaders() {
		v := hv.GetRawValue()
		if v == nil {
			v = []byte(hv.GetValue())
		}
		switch strings.ToLower(hv.GetKey()) {
		case extprocapi.HeaderMethod:
			r.method = string(v)
		case extprocapi.HeaderPath:
			r.path = string(v)
		case extprocapi.HeaderAnthropicVersion:
			r.anthropic = true
		case extprocapi.HeaderChatGPTAccount:
			r.account = string(v)
		}
	}
	return r
}

// Hosts whose clients need refusals in their own shape to show them.
const (
	hostChatGPT   = "chatgpt.com"
	hostAnthropic = "api.anthropic.com"
	// codexRoutingPath is Codex's workspace routing discovery, which it
	// calls before every turn.
	codexRoutingPath = "/backend-api/wham/accounts/check"
)

// render turns a refusal into the answer the agent's client shows to its
// person instead of retrying. Measured with the real CLIs (see
// docs/credentials.md):
//   - Claude Code (any Anthropic SDK client) retries 5xx and 429 for
//     three minutes in silence, but prints a 403's error.message at once:
//     403, Anthropic's error JSON, and x-should-retry: false.
//     A refusal of what the request carries (DLP) is a 400
//     invalid_request_error instead, which it shows as the request's
//     error, not as a failed authentication.
//   - Codex retries 403, 5xx and 401 (refreshing its token each time) for
//     up to 30 s, and replaces 429's and 500's text with its own, but
//     prints a 400's text/plain body word for word and stops: 400.
//   - Everyone else (curl, git, gh, SDKs): 403 with a plain-text body, a
//     status clients do not retry, and x-should-retry: false for the
//     SDKs that honour it.
//
// A refusal that retrying can mend (a reload in flight, a rate bound)
// keeps its own status.
func render(d *denial, b binding, r request) *extprocv3.ProcessingResponse {
	if !d.credential && !d.request {
		return immediate(d.status, d.code, "text/plain; charset=utf-8", []byte(d.body()), nil)
	}
	noRetry := []*corev3.HeaderValueOption{overwrite("x-should-retry", "false")}
	switch {
	case (b.Host == hostAnthropic || r.anthropic) && d.request:
		// Claude Code words a 403 as "Failed to authenticate"; a 400 is
		// shown as the request's own error, and not retried either.
		body, _ := json.Marshal(anthropicError{Type: "error", Error: anthropicErrorBody{Type: "invalid_request_error", Message: strings.TrimSuffix(d.body(), "\n")}})
		return immediate(typev3.StatusCode_BadRequest, d.code, "application/json", body, noRetry)
	case b.Host == hostAnthropic || r.anthropic:
		body, _ := json.Marshal(anthropicError{Type: "error", Error: anthropicErrorBody{Type: "permission_error", Message: strings.TrimSuffix(d.body(), "\n")}})
		return immediate(typev3.StatusCode_Forbidden, d.code, "application/json", body, noRetry)
	case b.Host == hostChatGPT && d.status != typev3.StatusCode_TooManyRequests:
		return immediate(typev3.StatusCode_BadRequest, d.code, "text/plain; charset=utf-8", []byte(d.body()), noRetry)
	case d.status == typev3.StatusCode_TooManyRequests:
		return immediate(d.status, d.code, "text/plain; charset=utf-8", []byte(d.body()), noRetry)
	}
	return immediate(typev3.StatusCode_Forbidden, d.code, "text/plain; charset=utf-8", []byte(d.body()), noRetry)
}

type anthropicError struct {
	Type  string             `json:"type"`
	Error anthropicErrorBody `json:"error"`
}

type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// immediate answers the agent directly; the request never reaches the
// upstream. details becomes Envoy's response code details (access logs),
// so it is a short code without spaces.
func immediate(status typev3.StatusCode, details, contentType string, body []byte, extra []*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	headers := append([]*corev3.HeaderValueOption{
		overwrite("content-type", contentType),
		overwrite("cache-control", "no-store"),
	}, extra...)
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{
			ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: status},
				Headers: &extprocv3.HeaderMutation{SetHeaders: headers},
				Body:    body,
				Details: details,
			},
		},
	}
}
