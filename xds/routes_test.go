package xds

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

// TestAnsweredMatchComesFirst: a manifest may widen auth.openai.com, but
// the refresh answer must stay ahead of every route it adds, WebSocket
// twins included, or an upgrade request would carry the agent's refresh
// token upstream.
func TestAnsweredMatchComesFirst(t *testing.T) {
	p := &config.Policy{
		Name:  "t",
		Slots: []config.Slot{{Name: "EGRESS_TOKEN_0", Source: config.Source{Kind: config.SourceCodex, Ref: "/h/auth.json"}}},
		Routes: []config.Route{{Host: "auth.openai.com", TLS: config.Intercept, Matches: []config.Match{
			{Paths: []config.PathMatch{{Type: config.PathExact, Value: "/oauth/token"}}, Methods: []string{"POST"},
				Answer: &config.Answer{Kind: config.AnswerCodexRefresh, Slot: "EGRESS_TOKEN_0"}},
			{Paths: []config.PathMatch{{Type: config.PathPrefix, Value: "/oauth/"}}},
		}}},
	}
	rc, err := mitmRoutes(p, p.Routes[0])
	require.NoError(t, err)
	var names []string
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		names = append(names, r.GetName())
	}
	require.Equal(t, []string{"auth.openai.com/0", "auth.openai.com/ws/1", "auth.openai.com/1", "auth.openai.com/refuse"}, names)
}
