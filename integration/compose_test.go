package integration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/internal/testenv"
)

// composeUpTimeout bounds the stack coming up: egressgate and Envoy restart
// until the demo's CA and the bootstrap exist, a few seconds in all.
const composeUpTimeout = 2 * time.Minute

// TestComposeStack validates docker-compose.yml and runs it as people do,
// with the images scripts/build-images.sh tags: the agent container, on an
// internal network whose only way out is Envoy, reaches the demo upstream,
// which sees the host-held token and none of the agent's credentials.
func TestComposeStack(t *testing.T) {
	containerSuite(t)
	compose := composeCLI(t)
	root := testenv.ModuleRoot(t)
	token := "demo-" + rand.Text()
	project := "egtest" + strings.ToLower(rand.Text()[:8])
	// The example bottle, with the codex template forwarding a throwaway
	// host login (the test must not mount the machine's), so that the
	// egress has something of its own to answer.
	bottles, login := composeBottle(t, root)
	run := func(ctx context.Context, args ...string) (string, error) {
		full := append(append(compose[1:], "-p", project, "-f", filepath.Join(root, "docker-compose.yml")), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Env = append(os.Environ(), "DEMO_TOKEN="+token, "CODEX_HOME="+login.home, "EGRESSGATE_BOTTLES="+bottles)
		out, err := cmd.CombinedOutput()
		return redact(string(out), []string{token, login.accessToken}), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), composeUpTimeout)
	defer cancel()

	out, err := run(ctx, "config")
	require.NoError(t, err, "compose config:\n%s", out)
	var cfg struct {
		Services map[string]struct {
			Volumes []any `json:"volumes"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &cfg))
	// What the agent talks to, and the agent itself, never see the keys in
	// the state dir or the host's Codex login.
	for _, svc := range []string{"envoy", "extproc", "agent"} {
		mounts := fmt.Sprint(cfg.Services[svc].Volumes)
		require.NotEmpty(t, cfg.Services[svc].Volumes, svc)
		assert.NotContains(t, mounts, "/state", "%s mounts the state dir", svc)
		assert.NotContains(t, mounts, "/codex", "%s mounts the Codex home", svc)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			logs, _ := run(ctx, "logs", "--no-color")
			t.Logf("compose logs:\n%s", tail([]byte(logs), 16<<10))
		}
		if out, err := run(ctx, "down", "-v", "--remove-orphans"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	out, err = run(ctx, "up", "-d")
	require.NoError(t, err, "compose up:\n%s", out)

	var probe string
	eventually(t, composeUpTimeout, "the agent's request through the stack", func() bool {
		probe, err = run(ctx, "run", "--rm", "agent")
		return err == nil
	})
	want := sha256.Sum256([]byte("Bearer " + token))
	assert.Contains(t, probe, "200 OK")
	assert.Contains(t, probe, fmt.Sprintf(`"authorization_sha256":%q`, hex.EncodeToString(want[:])), "the demo saw the host-held token")
	assert.Contains(t, probe, `"proxy_authorization_present":false`)
	assert.NotContains(t, probe, token)

	// The stack keeps the same audit trail as serve on a host: the request
	// above, a refused CONNECT, a refused path, and a request failed closed
	// while the sidecar is down, read back with `egressgate audit`.
	refused, _ := run(ctx, "run", "--rm", "agent", "/agentprobe", "https://evil.example.test/")
	assert.Contains(t, refused, "Forbidden", "the unlisted host is refused at CONNECT")
	refusedPath, _ := run(ctx, "run", "--rm", "agent", "/agentprobe", "https://demo.example.test/private")
	assert.Contains(t, refusedPath, "403", "a path the route does not list is refused")
	open, _ := run(ctx, "run", "--rm", "agent", "/agentprobe", "https://open.example.test/open")
	assert.Contains(t, open, "200 OK", "a route without auth is forwarded")
	assert.NotContains(t, open, "authorization_sha256", "the agent's credential stripped and none injected")
	answered, _ := run(ctx, "run", "--rm", "agent", "/agentprobe", "-method", "POST", "https://auth.openai.com/oauth/token")
	assert.Contains(t, answered, "200 OK", "the egress answers Codex's refresh itself")
	assert.NotContains(t, answered, login.accessToken)
	out, err = run(ctx, "stop", "extproc")
	require.NoError(t, err, "compose stop extproc:\n%s", out)
	failed, _ := run(ctx, "run", "--rm", "agent", "/agentprobe", "https://demo.example.test/hello/while-down")
	assert.Contains(t, failed, "503", "with the sidecar down, a credentialed request fails closed")
	assert.NotContains(t, failed, token)
	var credentialed, connect, path, closed, forwarded, answer audit.Record
	var raw string
	seen := map[string]int{} // records by host and path
	eventually(t, time.Minute, "the stack's audit records", func() bool {
		full := append(append(compose[1:], "-p", project, "-f", filepath.Join(root, "docker-compose.yml")),
			"exec", "-T", "control", "/egressgate", "audit", "--state-dir=/state", "--all", "--json", "-n", "100")
		out, err := exec.CommandContext(ctx, compose[0], full...).Output()
		if err != nil {
			return false
		}
		raw = string(out)
		clear(seen)
		for line := range strings.Lines(raw) {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) != nil {
				continue
			}
			seen[r.Host+r.Path]++
			switch {
			case r.Host == "demo.example.test" && r.Path == "/hello":
				credentialed = r
			case r.Host == "evil.example.test":
				connect = r
			case r.Path == "/private":
				path = r
			case r.Path == "/hello/while-down":
				closed = r
			case r.Path == "/open":
				forwarded = r
			case r.Path == "/oauth/token":
				answer = r
			}
		}
		return credentialed.Decision != "" && connect.Decision != "" && path.Decision != "" && closed.Decision != "" && forwarded.Decision != "" && answer.Decision != ""
	})
	assert.Equal(t, audit.ForwardedWithCredential, credentialed.Decision)
	assert.Equal(t, "compose", credentialed.Bottle)
	// Slot 0 is the Codex login the template forwards; the demo's is next.
	assert.Equal(t, "EGRESS_TOKEN_1", credentialed.Slot)
	assert.NotEmpty(t, credentialed.Agent, "the agent container's address")
	assert.Equal(t, audit.Refused, connect.Decision)
	assert.Equal(t, "host_not_allowed", connect.Reason)
	assert.Equal(t, audit.Refused, path.Decision, "%+v", path)
	assert.Equal(t, "not_allowed", path.Reason)
	assert.Equal(t, audit.FailedClosed, closed.Decision, "%+v", closed)
	assert.Equal(t, audit.Forwarded, forwarded.Decision, "%+v", forwarded)
	assert.Empty(t, forwarded.Slot)
	assert.Equal(t, audit.Answered, answer.Decision, "%+v", answer)
	assert.Equal(t, "refresh_answered", answer.Reason)
	// One probe each, one record each. (The first request may have been
	// tried while the stack was still coming up, so it is not counted.)
	for _, key := range []string{"evil.example.test", "demo.example.test/private", "demo.example.test/hello/while-down", "open.example.test/open", "auth.openai.com/oauth/token"} {
		assert.Equal(t, 1, seen[key], "records of %s", key)
	}
	for _, secret := range []string{token, login.accessToken, "agent-placeholder", "YWdlbnQ6cGxhY2Vob2xkZXI="} {
		assert.False(t, strings.Contains(raw, secret), "an audit record holds a credential")
	}
}

// composeBottle is a bottle directory for the stack: examples/compose.md
// with the codex template forwarding a host login, and that login, in
// directories the containers' user (65532) can read.
func composeBottle(t *testing.T, root string) (string, *hostLogin) {
	t.Helper()
	manifest := readFile(t, filepath.Join(root, "examples", "compose.md"))
	require.Contains(t, manifest, "\nname: compose\n")
	manifest = strings.Replace(manifest, "\nname: compose\n", "\nname: compose\nagent_provider: {template: codex, forward_host_credentials: true}\n", 1)
	dir := t.TempDir()
	replaceFile(t, filepath.Join(dir, "compose.md"), manifest)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	for _, d := range []string{dir, login.home} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(dir, "compose.md"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(login.home, "auth.json"), 0o644))
	return dir, login
}

// composeCLI is `docker compose` (v2) where the plugin exists, else
// Debian's docker-compose (v1); the file works with both.
func composeCLI(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("neither docker compose nor docker-compose is installed")
	}
	t.Skip("neither docker compose nor docker-compose is installed")
	return nil
}

// TestEgressgateImage checks the image scripts/build-images.sh builds: it
// runs as a non-root user and holds no shell, so a compromised egressgate
// has nothing to run.
func TestEgressgateImage(t *testing.T) {
	containerSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Config.User}}", egressgateImage).Output()
	require.NoError(t, err)
	assert.Equal(t, "65532:65532", strings.TrimSpace(string(user)))

	for _, shell := range []string{"/bin/sh", "/bin/bash", "/busybox"} {
		out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", "--entrypoint", shell, egressgateImage, "-c", "true").CombinedOutput()
		assert.Error(t, err, "%s exists in the image:\n%s", shell, out)
	}
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", "--network", "none", egressgateImage, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "egressgate")
}
