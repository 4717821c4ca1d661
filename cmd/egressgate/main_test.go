package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestValidatePrintsRoutesAndSlotsNeverValues(t *testing.T) {
	const token = "ghp_cli-test-token-value"
	t.Setenv("GITHUB_TOKEN", token)
	code, stdout, stderr := runCLI(t, "validate", "--manifest", "../../examples/quickstart.md")
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{"bottle quickstart", "api.github.com", "Bearer EGRESS_TOKEN_0", "chatgpt.com", "pypi.org", "passthrough", "<redacted:EGRESS_TOKEN_0>"} {
		assert.Contains(t, stdout, want)
	}
	assert.NotContains(t, stdout+stderr, token)
	// No dlp block: every intercepted route blocks, passthrough is off.
	assert.Regexp(t, `(?m)^  api\.github\.com .* dlp=block$`, stdout)
	assert.Regexp(t, `(?m)^  chatgpt\.com .* dlp=block$`, stdout)
	assert.Regexp(t, `(?m)^  pypi\.org .*passthrough .* dlp=off$`, stdout)
	assert.Contains(t, stdout, "\ndlp:\n  patterns: (none)\n  allowed fingerprints: 0\n")
}

// TestValidatePrintsDLP: each route's mode, and large_body and
// max_body_bytes where not the default; the bottle's pattern names and
// how many fingerprints it allows, never the patterns' literals.
func TestValidatePrintsDLP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlp.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`name: demo
agent_provider: {template: claude}
dlp:
  large_body: pass
  patterns:
    - {name: corp-token, regex: 'corp_[A-Za-z0-9]{32}'}
    - {name: project-codename, literal: 'BLUEHERON-7731'}
  allow: ['0123456789ab', 'ba9876543210']
egress:
  routes:
    - host: api.github.com
      dlp: {mode: log, large_body: block}
    - host: uploads.github.com
      dlp: {max_body_bytes: 1048576}
    - host: docs.test
      dlp: {mode: off}
    - host: pypi.org
      tls: passthrough
`), 0o644))
	code, stdout, stderr := runCLI(t, "validate", "--manifest", path)
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{
		`(?m)^  api\.anthropic\.com .* dlp=block large_body=pass$`,
		`(?m)^  api\.github\.com .* dlp=log$`,
		`(?m)^  uploads\.github\.com .* dlp=block large_body=pass max_body_bytes=1048576$`,
		`(?m)^  docs\.test .* dlp=off$`,
		`(?m)^  pypi\.org .* dlp=off$`,
	} {
		assert.Regexp(t, want, stdout)
	}
	assert.Contains(t, stdout, "\ndlp:\n  patterns: corp-token, project-codename\n  allowed fingerprints: 2\n")
	assert.NotContains(t, stdout, "BLUEHERON")
}

func TestValidateReportsFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.md")
	require.NoError(t, os.WriteFile(path, []byte("---\nname: demo\negress:\n  routes:\n    - host: pypi.org\n      tls: passthru\n---\n"), 0o644))
	code, stdout, stderr := runCLI(t, "validate", "--manifest", path)
	assert.Equal(t, exitInvalid, code)
	assert.Empty(t, stdout)
	assert.True(t, strings.HasPrefix(stderr, path+":6: "), "want %s:6: prefix, got %q", path, stderr)
}

func TestMissingManifestFlag(t *testing.T) {
	code, _, stderr := runCLI(t, "validate")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "manifest")
}

func TestValidateWarnsAndStrictFails(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("EGRESSGATE_DEMO_TOKEN", "demo-host-token")
	code, stdout, stderr := runCLI(t, "validate", "--manifest", "../../examples/quickstart.md")
	require.Equal(t, exitOK, code, "a warning is not an error")
	assert.Contains(t, stdout, "bottle quickstart")
	assert.Regexp(t, `^warning: \.\./\.\./examples/quickstart\.md:[0-9]+: GITHUB_TOKEN is not set`, stderr)

	code, _, stderr = runCLI(t, "validate", "--strict", "--manifest", "../../examples/quickstart.md")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, "1 warning(s) and --strict")
}
