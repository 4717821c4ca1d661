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

// Golden host credentials. Each source gets its own value (goldenSecret
// names it), so a value found in an output says which source leaked; none
// may appear in a golden file: slot values travel to ext_proc, not Envoy,
// and the refresh and id tokens never leave the auth.json parser.
const (
	goldenRefreshToken = "golden-codex-refresh-token-must-not-leak"
	goldenIDToken      = "golden-codex-id-token-must-not-leak"
	// goldenTokenDir holds the golden inputs' token_file tokens. Inputs
	// name it absolutely: a token_file path is shown in the route binding,
	// so a relative one would put this checkout's path in the goldens.
	goldenTokenDir = "/golden/tokens/"
)

// goldenSecret is the value of the golden credential source named by kind
// and name (a variable, a token file's base name).
func goldenSecret(kind, name string) string {
	return "golden-" + kind + "-" + name + "-must-not-leak"
}

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
			p := loadGolden(t, in)
			got := renderGolden(t, translatePolicy(t, p))
			requireNoSecrets(t, p, got)
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
	return translatePolicy(t, loadGolden(t, path))
}

func loadGolden(t testing.TB, path string) *config.Policy {
	t.Helper()
	p, err := config.Load(path, goldenLoadOptions(t))
	require.NoError(t, err)
	return p
}

// requireNoSecrets stops the test if out holds any credential value of p's
// slots or the Codex tokens that are not slots. Failures name the slot or
// token, never its value: test output is a log like any other. It stops
// rather than fails so that neither the golden diff (which would quote the
// value) nor -update (which would write it down) runs.
func requireNoSecrets(t *testing.T, p *config.Policy, out string) {
	t.Helper()
	secrets := map[string]string{
		"the Codex refresh token": goldenRefreshToken,
		"the Codex id token":      goldenIDToken,
	}
	for _, sl := range p.Slots {
		// An empty slot would make the check below pass vacuously; every
		// golden source is given a value.
		require.True(t, sl.Present(), "slot %s (%s) is empty: give its source a golden value", sl.Name, sl.Source)
		for name, v := range secrets {
			if v == sl.Value.Reveal() {
				t.Fatalf("slot %s holds the same value as %s: a leak could not be told apart", sl.Name, name)
			}
		}
		secrets["slot "+sl.Name+" ("+sl.Source.String()+")"] = sl.Value.Reveal()
	}
	for name, v := range secrets {
		if strings.Contains(out, v) {
			t.Errorf("the golden output holds the value of %s", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func translatePolicy(t *testing.T, p *config.Policy) *Resources {
	t.Helper()
	res, err := Translate(goldenInput(p))
	require.NoError(t, err)
	return res
}

// goldenInput is the translation input of the golden tests for p: a
// distinct placeholder leaf per host, fixed addresses and keys.
func goldenInput(p *config.Policy) Input {
	leaves := map[string]Certificate{}
	for _, r := range p.Routes {
		leaves[r.Host] = Certificate{CertPEM: []byte("CERT " + r.Host), KeyPEM: []byte("KEY " + r.Host)}
	}
	return Input{
		Policy:         p,
		Leaves:         leaves,
		ProxyAddress:   "127.0.0.1:3128",
		ExtProcAddress: "127.0.0.1:9001",
		ExtProcKey:     config.NewSecret("golden-extproc-caller-key"),
		AuditKey:       config.NewSecret("golden-audit-key"),
		SystemCAFile:   "/etc/ssl/certs/ca-certificates.crt",
	}
}

// BenchmarkTranslate measures translation alone (the policy is loaded
// once): it runs on every reload, and validation is part of its cost.
func BenchmarkTranslate(b *testing.B) {
	in := goldenInput(loadGolden(b, filepath.Join("testdata", "in", "codex.yaml")))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(in); err != nil {
			b.Fatal(err)
		}
	}
}

// goldenLoadOptions gives every credential source its own golden value
// (goldenSecret) and a fixed clock, so outputs do not depend on the
// machine.
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
		"tokens":    map[string]any{"access_token": access, "refresh_token": goldenRefreshToken, "id_token": goldenIDToken},
	})
	require.NoError(t, err)
	return config.Options{
		CodexHome: "/golden/codex",
		ReadFile: func(path string) ([]byte, error) {
			if path == "/golden/codex/auth.json" {
				return auth, nil
			}
			if name, ok := strings.CutPrefix(path, goldenTokenDir); ok {
				return []byte(goldenSecret("file", name) + "\n"), nil
			}
			return os.ReadFile(path)
		},
		LookupEnv: func(key string) (string, bool) { return goldenSecret("env", key), true },
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
