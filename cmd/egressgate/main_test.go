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
