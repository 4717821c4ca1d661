package agentenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

// These tests never print a canary value: failures name the variable.

func canaryOptions(t *testing.T, manifest string) Options {
	t.Helper()
	o := newFakeHost(t, newHostLogin(t)).options(t, manifest)
	o.NoCanaries = false
	return o
}

// canaryEnv are the variables that carry canaries.
var canaryEnv = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"}

func TestCanariesPlanted(t *testing.T) {
	o := canaryOptions(t, codexManifest(true))
	res, err := Generate(o)
	require.NoError(t, err)

	runs, err := canary.Runs(o.StateDir, "demo")
	require.NoError(t, err)
	require.Len(t, runs, 1, "the run's set is recorded")
	set := runs[0]
	require.Equal(t, []string{canary.AWSAccessKeyID, canary.AWSSecretAccessKey, canary.GitHubToken}, set.Kinds())

	env := readEnv(t, o.OutDir)
	requireSame(t, set.Value(canary.AWSAccessKeyID), env["AWS_ACCESS_KEY_ID"], "AWS_ACCESS_KEY_ID")
	requireSame(t, set.Value(canary.AWSSecretAccessKey), env["AWS_SECRET_ACCESS_KEY"], "AWS_SECRET_ACCESS_KEY")
	requireSame(t, set.Value(canary.GitHubToken), env["GITHUB_TOKEN"], "GITHUB_TOKEN")
	assert.Equal(t, "/egressgate/aws/credentials", env["AWS_SHARED_CREDENTIALS_FILE"])
	want := baseEnvWant(DefaultProxyURL, DefaultCAPath)
	want["CODEX_HOME"] = "/egressgate/codex"
	for _, k := range append(canaryEnv, "AWS_SHARED_CREDENTIALS_FILE") {
		delete(env, k)
	}
	assert.Equal(t, want, env, "the rest of the env file is as without canaries")

	creds, err := os.ReadFile(filepath.Join(o.OutDir, "aws", "credentials"))
	require.NoError(t, err)
	require.True(t, string(creds) == "[default]\naws_access_key_id = "+set.Value(canary.AWSAccessKeyID).Reveal()+
		"\naws_secret_access_key = "+set.Value(canary.AWSSecretAccessKey).Reveal()+"\n", "aws/credentials holds the AWS pair")
	assertModes(t, o.OutDir, map[string]os.FileMode{"aws/credentials": 0o600, "env": 0o644})
	assertModes(t, o.StateDir, map[string]os.FileMode{"demo/canaries.json": 0o600})
	assert.Contains(t, res.Files, filepath.Join(o.OutDir, "aws", "credentials"))

	named, err := canary.Load(o.StateDir, "demo")
	require.NoError(t, err)
	require.Len(t, named, 3, "serve finds the three canaries")

	summary := strings.Join(append(res.Notes, res.Files...), "\n")
	assert.Contains(t, summary, "canaries planted: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, aws/credentials (AWS_SHARED_CREDENTIALS_FILE), GITHUB_TOKEN")
	assert.Contains(t, summary, "--no-canaries")
	for _, k := range set.Kinds() {
		require.False(t, strings.Contains(summary, set.Value(k).Reveal()), "the summary shows the %s", k)
	}
}

// TestCanariesLookReal: dlp's format rules, with no canary configured,
// take what the agent is given for real credentials: the GitHub token
// passes their checksum, and the AWS pair is found in the credentials file.
func TestCanariesLookReal(t *testing.T) {
	o := canaryOptions(t, "name: demo\n")
	_, err := Generate(o)
	require.NoError(t, err)
	scanner, err := dlp.New(dlp.Config{})
	require.NoError(t, err)
	for _, tt := range []struct {
		file string
		want []string
	}{
		{"env", []string{dlp.KindAWSAccessKeyID, dlp.KindAWSSecretKey, dlp.KindGitHubToken}},
		{"aws/credentials", []string{dlp.KindAWSAccessKeyID, dlp.KindAWSSecretKey}},
	} {
		data, err := os.ReadFile(filepath.Join(o.OutDir, filepath.FromSlash(tt.file)))
		require.NoError(t, err)
		var kinds []string
		for _, f := range scanner.Scan(data) {
			kinds = append(kinds, f.Kind)
		}
		assert.ElementsMatch(t, tt.want, kinds, tt.file)
	}
}

// TestCanariesPerRun: every run plants new values, and the state dir keeps
// the last canary.Keep runs' sets, so agents of earlier runs are still
// caught; the env file holds the newest.
func TestCanariesPerRun(t *testing.T) {
	o := canaryOptions(t, "name: demo\n")
	seen := map[string]bool{}
	for range canary.Keep + 2 {
		_, err := Generate(o)
		require.NoError(t, err)
		env := readEnv(t, o.OutDir)
		for _, k := range canaryEnv {
			require.False(t, seen[env[k]], "%s repeats an earlier run's", k)
			seen[env[k]] = true
		}
	}
	runs, err := canary.Runs(o.StateDir, "demo")
	require.NoError(t, err)
	require.Len(t, runs, canary.Keep)
	requireSame(t, runs[len(runs)-1].Value(canary.GitHubToken), readEnv(t, o.OutDir)["GITHUB_TOKEN"], "the newest run")
}

func TestCanariesUnderTheMount(t *testing.T) {
	o := canaryOptions(t, "name: demo\n")
	o.CAPath = "/certs/bottle-ca.pem"
	_, err := Generate(o)
	require.NoError(t, err)
	assert.Equal(t, "/certs/aws/credentials", readEnv(t, o.OutDir)["AWS_SHARED_CREDENTIALS_FILE"])
}

// TestCanariesNotForRoutedAWS: a manifest that routes AWS leaves the
// agent's AWS configuration to it; the GitHub canary is still planted.
func TestCanariesNotForRoutedAWS(t *testing.T) {
	o := canaryOptions(t, "name: demo\negress:\n  routes:\n    - host: s3.us-east-1.amazonaws.com\n")
	res, err := Generate(o)
	require.NoError(t, err)
	env := readEnv(t, o.OutDir)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE"} {
		requireUnset(t, env, k)
	}
	assert.NoFileExists(t, filepath.Join(o.OutDir, "aws", "credentials"))
	_, ok := env["GITHUB_TOKEN"]
	assert.True(t, ok, "GITHUB_TOKEN is planted")
	assert.Contains(t, strings.Join(res.Notes, "\n"), "no AWS canaries: the manifest routes s3.us-east-1.amazonaws.com")
	runs, err := canary.Runs(o.StateDir, "demo")
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, []string{canary.GitHubToken}, runs[0].Kinds(), "only what was planted is recorded")
}

func TestNoCanaries(t *testing.T) {
	o := canaryOptions(t, "name: demo\n")
	_, err := Generate(o)
	require.NoError(t, err)
	o.NoCanaries = true
	res, err := Generate(o)
	require.NoError(t, err)
	env := readEnv(t, o.OutDir)
	for _, k := range canaryEnv {
		requireUnset(t, env, k)
	}
	assert.Equal(t, baseEnvWant(DefaultProxyURL, DefaultCAPath), env)
	assert.Contains(t, strings.Join(res.Notes, "\n"), filepath.Join(o.OutDir, "aws", "credentials")+" is left from an earlier run")
	runs, err := canary.Runs(o.StateDir, "demo")
	require.NoError(t, err)
	assert.Len(t, runs, 1, "no set recorded for the run without canaries")

	fresh := canaryOptions(t, "name: demo\n")
	fresh.NoCanaries = true
	_, err = Generate(fresh)
	require.NoError(t, err)
	assert.NoFileExists(t, canary.Path(fresh.StateDir, "demo"))
	assert.NoDirExists(t, filepath.Join(fresh.OutDir, "aws"))
}

// TestCanariesUnrecordedWriteNothing: canaries that cannot be recorded
// are not planted; nothing is written.
func TestCanariesUnrecordedWriteNothing(t *testing.T) {
	o := canaryOptions(t, "name: demo\n")
	path := canary.Path(o.StateDir, "demo")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := Generate(o)
	require.ErrorContains(t, err, path)
	assert.NoDirExists(t, o.OutDir)
}

// requireUnset checks that env has no key k, printing no value.
func requireUnset(t *testing.T, env map[string]string, k string) {
	t.Helper()
	_, ok := env[k]
	require.False(t, ok, "%s is set", k)
}

// requireSame compares a canary with what was planted without printing
// either.
func requireSame(t *testing.T, want config.Secret, got, what string) {
	t.Helper()
	require.True(t, !want.Empty() && want.Reveal() == got, "%s is not the recorded canary", what)
}
