package extprocapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

// asMetadata is what ext_proc sees of pairs sent as gRPC metadata.
func asMetadata(pairs [][2]string) func(string) []string {
	md := map[string][]string{}
	for _, kv := range pairs {
		md[kv[0]] = append(md[kv[0]], kv[1])
	}
	return func(key string) []string { return md[key] }
}

func TestBindingRoundTrip(t *testing.T) {
	for name, b := range map[string]Binding{
		"strip only":  {Host: "api.example", Strip: JoinStrip([]string{"authorization", "x-api-key"})},
		"bearer":      {Host: "chatgpt.com", Slot: "EGRESS_TOKEN_0", Source: "codex-login /h/auth.json", Scheme: "Bearer", Strip: "authorization"},
		"raw header":  {Host: "api.anthropic.com", Slot: "EGRESS_TOKEN_1", Source: "env ANTHROPIC_API_KEY", Header: "x-api-key", Strip: "x-api-key"},
		"answer":      {Host: "auth.openai.com", Slot: "EGRESS_TOKEN_0", Source: "codex-login /h/auth.json", Answer: config.AnswerCodexRefresh},
		"host absent": {Slot: "EGRESS_TOKEN_0", Scheme: "token"},
		"dlp":         {Host: "api.github.com", Slot: "EGRESS_TOKEN_2", Source: "env GITHUB_TOKEN", Scheme: "token", DLP: "block", DLPLarge: "pass", DLPMax: "65536"},
		"dlp log":     {Host: "example.com", DLP: "log", DLPLarge: "block", DLPMax: "8388608"},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, b.Validate())
			for _, kv := range b.Metadata() {
				assert.NotEmpty(t, kv[1], "empty fields are left out")
			}
			got, err := ReadBinding(asMetadata(b.Metadata()))
			require.NoError(t, err)
			assert.Equal(t, b, got)
		})
	}
}

func TestReadBindingRefusesRepeatedKeys(t *testing.T) {
	pairs := append(Binding{Host: "chatgpt.com", Slot: "EGRESS_TOKEN_0", Scheme: "Bearer"}.Metadata(), [2]string{MetadataSlot, "EGRESS_TOKEN_1"})
	_, err := ReadBinding(asMetadata(pairs))
	assert.ErrorContains(t, err, "x-egressgate-slot has 2 values")
}

func TestValidateRefusesWhatNoTranslationMakes(t *testing.T) {
	for _, tt := range []struct {
		b    Binding
		want string
	}{
		{Binding{Answer: config.AnswerCodexRefresh}, "names no slot"},
		{Binding{Slot: "S", Answer: "other"}, `unknown answer "other"`},
		{Binding{Slot: "S", Answer: config.AnswerCodexRefresh, Scheme: "Bearer"}, "both answered and injected"},
		{Binding{Slot: "S", Header: "x-api-key", Scheme: "Bearer"}, "both a scheme and a header"},
		{Binding{Slot: "S", Scheme: "Basic"}, `unknown auth scheme "Basic"`},
		{Binding{Slot: "S", Scheme: "bearer"}, `unknown auth scheme "bearer"`},
		{Binding{Slot: "S"}, `unknown auth scheme ""`},
		{Binding{DLP: "warn", DLPLarge: "block", DLPMax: "1"}, `unknown dlp mode "warn"`},
		{Binding{DLP: "off", DLPLarge: "block", DLPMax: "1"}, `unknown dlp mode "off"`},
		{Binding{DLPLarge: "pass"}, "with dlp off"},
		{Binding{DLP: "block"}, `unknown dlp large-body action ""`},
		{Binding{DLP: "block", DLPLarge: "pass"}, `dlp body limit "" is not a size`},
		{Binding{DLP: "block", DLPLarge: "pass", DLPMax: "0"}, `dlp body limit "0" is not a size`},
		{Binding{DLPMax: "10"}, "with dlp off"},
	} {
		assert.ErrorContains(t, tt.b.Validate(), tt.want, "%+v", tt.b)
	}
}

func TestForwardedHeadersCoverWhatExtProcDecidesOn(t *testing.T) {
	names, prefixes := ForwardedHeaders()
	for _, h := range append([]string{HeaderMethod, HeaderPath, HeaderAnthropicVersion, HeaderChatGPTAccount}, MethodOverrideHeaders...) {
		assert.Contains(t, names, h)
	}
	assert.Equal(t, []string{EnvoyHeaderPrefix}, prefixes)
}
