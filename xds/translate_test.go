package xds

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/egressgate/egressgate/config"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current translation")

// goldenToken is the host credential every golden input carries. It must
// never appear in a golden file: slot values travel to ext_proc, not Envoy.
const goldenToken = "golden-host-token-must-not-leak"

// TestTranslateGolden translates every testdata/in/*.yaml manifest and
// compares the Envoy resources with testdata/out/*.yaml. Run with -update
// to rewrite the outputs (and delete orphans), then review the diff.
func TestTranslateGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	want := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		out := filepath.Join("testdata", "out", name+".yaml")
		want[out] = true
		t.Run(name, func(t *testing.T) {
			got := renderGolden(t, translateManifest(t, in))
			require.NotContains(t, got, goldenToken)
			if *update {
				require.NoError(t, os.WriteFile(out, []byte(got), 0o644))
				return
			}
			expected, err := os.ReadFile(out)
			require.NoError(t, err, "missing golden file; run go test ./xds -update")
			if diff := cmp.Diff(string(expected), got); diff != "" {
				t.Fatalf("translation changed (-golden +got); run make golden and review the diff:\n%s", diff)
			}
		})
	}
	if *update {
		outs, _ := filepath.Glob("testdata/out/*.yaml")
		for _, o := range outs {
			if !want[o] {
				require.NoError(t, os.Remove(o))
			}
		}
	}
}

func TestTranslateIsDeterministic(t *testing.T) {
	in := filepath.Join("testdata", "in", "codex.yaml")
	a, err := translateManifest(t, in).Snapshot()
	require.NoError(t, err)
	b, err := translateManifest(t, in).Snapshot()
	require.NoError(t, err)
	require.Equal(t, a.GetVersion(""), b.GetVersion(""))
}

func translateManifest(t *testing.T, path string) *Resources {
	t.Helper()
	res, err := Translate(goldenInput(t, path))
	require.NoError(t, err)
	return res
}

// goldenInput is the translation input of a golden manifest: the policy
// it loads to, with fixed leaves, addresses and keys.
func goldenInput(tb testing.TB, path string) Input {
	tb.Helper()
	p, err := config.Load(path, goldenLoadOptions(tb))
	require.NoError(tb, err)
	leaves := map[string]Certificate{}
	for _, r := range p.Routes {
		leaves[r.Host] = Certificate{CertPEM: []byte("CERT " + r.Host), KeyPEM: []byte("KEY " + r.Host)}
	}
	return Input{
		Policy:         p,
		Leaves:         leaves,
		ProxyAddress:   "127.0.0.1:3128",
		ExtProcAddress: "127.0.0.1:9001",
		ExtProcKey:     "golden-extproc-caller-key",
		AuditKey:       "golden-audit-key",
		SystemCAFile:   "/etc/ssl/certs/ca-certificates.crt",
	}
}

// BenchmarkTranslate measures translation alone (the policy is loaded
// once): it runs on every reload, and validation is part of its cost.
func BenchmarkTranslate(b *testing.B) {
	in := goldenInput(b, filepath.Join("testdata", "in", "codex.yaml"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(in); err != nil {
			b.Fatal(err)
		}
	}
}

// goldenLoadOptions gives every credential source the golden token and a
// fixed clock, so outputs do not depend on the machine.
func goldenLoadOptions(t testing.TB) config.Options {
	t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp":                         now.Add(time.Hour).Unix(),
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acct-golden"},
	}).SignedString([]byte("throwaway"))
	require.NoError(t, err)
	auth, err := json.Marshal(map[string]any{
		"auth_mode": "chatgpt",
		"tokens":    map[string]any{"access_token": access, "refresh_token": goldenToken, "id_token": access},
	})
	require.NoError(t, err)
	return config.Options{
		CodexHome: "/golden/codex",
		ReadFile: func(path string) ([]byte, error) {
			if path == "/golden/codex/auth.json" {
				return auth, nil
			}
			return os.ReadFile(path)
		},
		LookupEnv: func(string) (string, bool) { return goldenToken, true },
		Now:       func() time.Time { return now },
	}
}

// renderGolden prints resources as YAML, grouped by type in translation
// order. JSON goes through a YAML re-encode because protojson output is
// deliberately unstable in its spacing.
func renderGolden(t *testing.T, r *Resources) string {
	t.Helper()
	var sb strings.Builder
	for _, group := range []struct {
		name string
		list []types.Resource
	}{{"listeners", r.Listeners}, {"routes", r.Routes}, {"clusters", r.Clusters}, {"secrets", r.Secrets}} {
		var items []json.RawMessage
		for _, m := range group.list {
			b, err := protojson.Marshal(m)
			require.NoError(t, err)
			items = append(items, b)
		}
		doc, err := json.Marshal(map[string]any{group.name: items})
		require.NoError(t, err)
		y, err := yaml.JSONToYAML(doc)
		require.NoError(t, err)
		sb.Write(y)
	}
	return sb.String()
}

// TestExtProcClusterTLS: a sidecar's ext_proc server is reached over TLS,
// verified by the control CA and the address's host (an IP in an IP SAN,
// a name in a DNS SAN and SNI); without a CA the link stays plaintext
// (serve's in-process server on loopback).
func TestExtProcClusterTLS(t *testing.T) {
	plain, err := extProcClusterFor("127.0.0.1:9001", nil)
	require.NoError(t, err)
	require.Nil(t, plain.GetTransportSocket())

	for addr, want := range map[string]tlsv3.SubjectAltNameMatcher_SanType{
		"127.0.0.1:9001": tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
		"extproc:9001":   tlsv3.SubjectAltNameMatcher_DNS,
	} {
		c, err := extProcClusterFor(addr, []byte("CONTROL CA PEM"))
		require.NoError(t, err)
		ctx := &tlsv3.UpstreamTlsContext{}
		require.NoError(t, c.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx))
		require.NoError(t, ctx.ValidateAll())
		vc := ctx.GetCommonTlsContext().GetValidationContext()
		require.Equal(t, "CONTROL CA PEM", string(vc.GetTrustedCa().GetInlineBytes()), addr)
		require.Len(t, vc.GetMatchTypedSubjectAltNames(), 1)
		san := vc.GetMatchTypedSubjectAltNames()[0]
		host := strings.Split(addr, ":")[0]
		require.Equal(t, want, san.GetSanType(), addr)
		require.Equal(t, host, san.GetMatcher().GetExact(), addr)
		require.Equal(t, []string{"h2"}, ctx.GetCommonTlsContext().GetAlpnProtocols())
		if want == tlsv3.SubjectAltNameMatcher_DNS {
			require.Equal(t, host, ctx.GetSni())
		} else {
			require.Empty(t, ctx.GetSni(), "SNI carries names only")
		}
	}
}
