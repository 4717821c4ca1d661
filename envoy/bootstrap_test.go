package envoy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/testenv"
	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xdsauth"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// mintToken returns a real xDS token, so the bootstrap tests exercise what
// serve will pass.
func mintToken(t *testing.T, node string) string {
	t.Helper()
	auth, err := xdsauth.LoadOrCreateKey(t.TempDir())
	require.NoError(t, err)
	token, _, err := auth.EnsureToken(node, xdsauth.RoleEnvoy, time.Now())
	require.NoError(t, err)
	return token
}

// testSocket is an admin socket path for bootstraps that are only rendered
// or validated, never run.
const testSocket = "/run/egressgate/demo/envoy-admin.sock"

func controlCAPEM(t *testing.T) string {
	t.Helper()
	ca, err := pki.LoadOrCreateControlCA(t.TempDir(), time.Now())
	require.NoError(t, err)
	return string(ca.CertPEM())
}

func TestRenderBootstrapPassesEnvoyValidation(t *testing.T) {
	bin := testenv.EnvoyBinary(t)
	token := mintToken(t, "demo")
	tests := []struct {
		name     string
		params   BootstrapParams
		wantYAML []string
	}{
		{
			name:   "defaults",
			params: BootstrapParams{NodeID: "demo", XDSHost: "127.0.0.1", XDSPort: 18000, AdminSocket: testSocket},
			wantYAML: []string{
				`id: "demo"`, `cluster: "egressgate"`, "type: STATIC",
				`address: "127.0.0.1"`, "port_value: 18000",
				"pipe:", `path: "` + testSocket + `"`, "mode: 0600",
			},
		},
		{
			name: "ipv6 and longest socket path",
			params: BootstrapParams{
				NodeID: "bottle-2", Cluster: "ci", XDSHost: "::1", XDSPort: 65535,
				AdminSocket: "/" + strings.Repeat("s", MaxSocketPathLen-1),
			},
			wantYAML: []string{`id: "bottle-2"`, `cluster: "ci"`, `address: "::1"`, "port_value: 65535"},
		},
		{
			name:     "xds by host name",
			params:   BootstrapParams{NodeID: "demo", XDSHost: "egressgate.internal", XDSPort: 18000, AdminSocket: testSocket},
			wantYAML: []string{"type: LOGICAL_DNS", `address: "egressgate.internal"`},
		},
		{
			name:   "xds token",
			params: BootstrapParams{NodeID: "demo", XDSHost: "127.0.0.1", XDSPort: 18000, AdminSocket: testSocket, XDSToken: token},
			wantYAML: []string{
				"initial_metadata:",
				"- key: " + xdsauth.MetadataKey,
				`value: "Bearer ` + token + `"`,
			},
		},
		{
			name:   "xds over TLS by IP",
			params: BootstrapParams{NodeID: "demo", XDSHost: "10.0.0.2", XDSPort: 18000, AdminSocket: testSocket, XDSTrustedCA: controlCAPEM(t)},
			wantYAML: []string{
				"envoy.transport_sockets.tls", "alpn_protocols: [h2]", "san_type: IP_ADDRESS", `exact: "10.0.0.2"`, "inline_string:",
			},
		},
		{
			name:     "xds over TLS by name",
			params:   BootstrapParams{NodeID: "demo", XDSHost: "control", XDSPort: 18000, AdminSocket: testSocket, XDSTrustedCA: controlCAPEM(t)},
			wantYAML: []string{`sni: "control"`, "san_type: DNS", `exact: "control"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := RenderBootstrap(tt.params)
			require.NoError(t, err)
			for _, want := range tt.wantYAML {
				require.Contains(t, string(out), want)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			require.NoError(t, Validate(ctx, bin, writeFile(t, "bootstrap.yaml", out)))
		})
	}
}

// The bootstrap must hold nothing but the xDS plumbing (DESIGN: "Envoy's
// own bootstrap"); everything else arrives over ADS.
func TestRenderBootstrapHoldsOnlyXDSPlumbing(t *testing.T) {
	out, err := RenderBootstrap(BootstrapParams{NodeID: "demo", XDSHost: "127.0.0.1", XDSPort: 18000, AdminSocket: testSocket})
	require.NoError(t, err)
	s := string(out)
	require.Equal(t, 1, strings.Count(s, "- name: "+"xds"), "exactly one static cluster")
	require.NotContains(t, s, "listeners:")
	require.NotContains(t, s, "secrets:")
	require.NotContains(t, s, "initial_metadata", "no token, no metadata")
	require.Equal(t, 1, strings.Count(s, "socket_address:"), "only the xDS endpoint is TCP; the admin is a Unix socket")
	for _, want := range []string{
		"set_node_on_first_message_only: true",
		"envoy.bootstrap.internal_listener",
		"envoy.resource_monitors.global_downstream_max_connections",
		"http2_protocol_options:",
		"retry_back_off:", "base_interval: 0.25s", "max_interval: 1s",
	} {
		require.Contains(t, s, want)
	}
}

func TestRenderBootstrapRejectsBadParams(t *testing.T) {
	ok := BootstrapParams{NodeID: "demo", XDSHost: "127.0.0.1", XDSPort: 18000, AdminSocket: testSocket}
	tooLong := "/" + strings.Repeat("s", MaxSocketPathLen)
	tests := []struct {
		name    string
		mutate  func(*BootstrapParams)
		wantErr string
	}{
		{"empty node id", func(p *BootstrapParams) { p.NodeID = "" }, "node id"},
		{"upper-case node id", func(p *BootstrapParams) { p.NodeID = "Demo" }, "node id"},
		{"yaml injection in node id", func(p *BootstrapParams) { p.NodeID = "a\"\nadmin: {}" }, "node id"},
		{"bad cluster", func(p *BootstrapParams) { p.Cluster = "a b" }, "cluster"},
		{"empty xds host", func(p *BootstrapParams) { p.XDSHost = "" }, "xDS host"},
		{"xds host with port", func(p *BootstrapParams) { p.XDSHost = "localhost:18000" }, "xDS host"},
		{"xds host injection", func(p *BootstrapParams) { p.XDSHost = "a\n b" }, "xDS host"},
		{"xds port zero", func(p *BootstrapParams) { p.XDSPort = 0 }, "xDS port"},
		{"xds port too big", func(p *BootstrapParams) { p.XDSPort = 65536 }, "xDS port"},
		{"no admin socket", func(p *BootstrapParams) { p.AdminSocket = "" }, "admin socket path is required"},
		{"relative admin socket", func(p *BootstrapParams) { p.AdminSocket = "demo/admin.sock" }, "absolute path"},
		{"admin socket as host:port", func(p *BootstrapParams) { p.AdminSocket = "127.0.0.1:9901" }, "absolute path"},
		{"admin socket too long", func(p *BootstrapParams) { p.AdminSocket = tooLong }, tooLong + " is 108 bytes"},
		{"yaml injection in admin socket", func(p *BootstrapParams) { p.AdminSocket = "/a\"\nadmin: {}" }, "newline"},
		{"token not a jwt", func(p *BootstrapParams) { p.XDSToken = "secret-value" }, "xDS token"},
		{"token with two parts", func(p *BootstrapParams) { p.XDSToken = "aGVhZGVy.cGF5bG9hZA" }, "xDS token"},
		{"unsigned token", func(p *BootstrapParams) { p.XDSToken = "aGVhZGVy.cGF5bG9hZA." }, "xDS token"},
		{"yaml injection in token", func(p *BootstrapParams) { p.XDSToken = "a.b.c\"\n  admin: {}" }, "xDS token"},
		{"token with a space", func(p *BootstrapParams) { p.XDSToken = "a.b.c d" }, "xDS token"},
		{"padded base64 token", func(p *BootstrapParams) { p.XDSToken = "a.b.c==" }, "xDS token"},
		{"huge token", func(p *BootstrapParams) { p.XDSToken = "a.b." + strings.Repeat("c", 5000) }, "xDS token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.mutate(&p)
			_, err := RenderBootstrap(p)
			require.ErrorContains(t, err, tt.wantErr)
			if p.XDSToken != "" {
				require.NotContains(t, err.Error(), p.XDSToken, "errors never quote the token")
			}
		})
	}
}

func TestValidateReportsEnvoysReason(t *testing.T) {
	bin := testenv.EnvoyBinary(t)
	path := writeFile(t, "bad.yaml", []byte("node: {id: x}\nstatic_resources: {clusters: [{name: a, type: BOGUS}]}\n"))
	err := Validate(t.Context(), bin, path)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "BOGUS")
}
