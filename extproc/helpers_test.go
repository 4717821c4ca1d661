package extproc

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

func codexSlot(value string, expiry time.Time) config.Slot {
	return config.Slot{
		Name:   "EGRESS_TOKEN_0",
		Source: config.Source{Kind: config.SourceCodex, Ref: "/root/.codex/auth.json"},
		Value:  config.NewSecret(value),
		Expiry: expiry,
	}
}

func envSlot(value string) config.Slot {
	return config.Slot{
		Name:   "EGRESS_TOKEN_1",
		Source: config.Source{Kind: config.SourceEnv, Ref: "GITHUB_TOKEN"},
		Value:  config.NewSecret(value),
	}
}

// mutation returns the header mutation of a continue-request-headers
// answer, failing the test for any other kind of answer.
func mutation(t *testing.T, resp *extprocv3.ProcessingResponse) *extprocv3.HeaderMutation {
	t.Helper()
	rh := resp.GetRequestHeaders()
	require.NotNil(t, rh, "want a request_headers answer, got %v", resp)
	require.Equal(t, extprocv3.CommonResponse_CONTINUE, rh.GetResponse().GetStatus())
	require.False(t, rh.GetResponse().GetClearRouteCache(), "must not re-route after injecting")
	return rh.GetResponse().GetHeaderMutation()
}

// requireInjected asserts the answer sets exactly authorization = want
// (in raw_value, overwriting) and removes only proxy-authorization.
func requireInjected(t *testing.T, resp *extprocv3.ProcessingResponse, want string) {
	t.Helper()
	m := mutation(t, resp)
	require.Len(t, m.GetSetHeaders(), 1)
	set := m.GetSetHeaders()[0]
	require.Equal(t, "authorization", set.GetHeader().GetKey())
	require.Equal(t, want, string(set.GetHeader().GetRawValue()))
	require.Empty(t, set.GetHeader().GetValue(), "Envoy reads raw_value; value must stay empty")
	require.Equal(t, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, set.GetAppendAction())
	require.Equal(t, []string{"proxy-authorization"}, m.GetRemoveHeaders())
}

// requireStripped asserts both credential headers are removed, none set.
func requireStripped(t *testing.T, resp *extprocv3.ProcessingResponse) {
	t.Helper()
	m := mutation(t, resp)
	require.Empty(t, m.GetSetHeaders())
	require.ElementsMatch(t, []string{"authorization", "proxy-authorization"}, m.GetRemoveHeaders())
}

// requireDenied asserts an immediate response with status, details code and
// a text/plain body containing every string in want.
func requireDenied(t *testing.T, resp *extprocv3.ProcessingResponse, status int, code string, want ...string) string {
	t.Helper()
	ir := resp.GetImmediateResponse()
	require.NotNil(t, ir, "want an immediate response, got %v", resp)
	require.EqualValues(t, status, ir.GetStatus().GetCode())
	require.Equal(t, code, ir.GetDetails())
	var ctype string
	for _, h := range ir.GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == "content-type" {
			ctype = string(h.GetHeader().GetRawValue())
		}
	}
	require.Contains(t, ctype, "text/plain")
	body := string(ir.GetBody())
	for _, w := range want {
		require.Contains(t, body, w)
	}
	return body
}

// requireRefused asserts an immediate response with details code whose
// body holds every string in want, whatever its status and format, and
// returns the body.
func requireRefused(t *testing.T, resp *extprocv3.ProcessingResponse, code string, want ...string) string {
	t.Helper()
	ir := resp.GetImmediateResponse()
	require.NotNil(t, ir, "want an immediate response, got %v", resp)
	require.Equal(t, code, ir.GetDetails())
	body := string(ir.GetBody())
	for _, w := range want {
		require.Contains(t, body, w)
	}
	return body
}

// header returns the value an immediate response sets for key.
func header(resp *extprocv3.ProcessingResponse, key string) string {
	for _, h := range resp.GetImmediateResponse().GetHeaders().GetSetHeaders() {
		if h.GetHeader().GetKey() == key {
			return string(h.GetHeader().GetRawValue())
		}
	}
	return ""
}

// hostAccessToken is a ChatGPT-shaped host access token expiring at exp.
func hostAccessToken(t *testing.T, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": exp.Unix(), "https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acct-42", "chatgpt_plan_type": "pro"},
	}).SignedString([]byte("host-key"))
	require.NoError(t, err)
	return s
}
