package integration

import (
	"context"
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
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// agentTimeout bounds one agent run: container start, the probe's
	// own 30 s request timeout, exit.
	agentTimeout = 45 * time.Second
	// reloadTimeout is how long a manifest edit may take to be served.
	// egressgate needs tens of milliseconds; the rest is agent runs.
	reloadTimeout = 60 * time.Second
	// logTail is how much of each container's log a failing test shows.
	logTail = 16 << 10
)

// standinCAFromBottle is the stand-in's CA as the manifest names it. The
// host dirs are laid out as the containers see them (ROOT/bottle,
// ROOT/shared; /bottle, /shared), so this path, relative to the manifest's
// directory, names the CA both for egressgate in its container and for
// `agent-env` run on the host with the same manifest.
const standinCAFromBottle = "../shared/standin-ca.pem"

// topologyOptions say what the container topology serves.
type topologyOptions struct {
	// login is the host's Codex login; its home is mounted into the
	// egressgate container only.
	login *hostLogin
	// routes are the hosts the manifest sends to the stand-in upstream.
	routes []string
	// upstreamHosts are the names the stand-in's certificate covers: the
	// routes, and any host a test adds to the manifest later.
	upstreamHosts []string
}

// topologyDirs are the host dirs bind-mounted into the containers.
type topologyDirs struct {
	bottle string // the manifest; egressgate's /bottle
	shared string // the stand-in's CA; standin's /shared (rw), egressgate's (ro)
	state  string // egressgate's /state (rw), Envoy's (ro, for the bootstrap)
	agent  string // agent-env's output; the agent's /egressgate (ro)
}

// topologyPorts are the loopback addresses of the topology; every
// container shares the host's network.
type topologyPorts struct {
	upstream, xds, admin, proxy, extProc string
}

// topology is the container stack: a stand-in upstream, egressgate
// (control + ext_proc) with an external Envoy, and agent containers run on
// demand.
type topology struct {
	t       *testing.T
	opts    topologyOptions
	dirs    topologyDirs
	ports   topologyPorts
	secrets []string // what no log may show: the host login's tokens

	standin, egressgate, envoy *testcontainers.DockerContainer
	agentEnv                   map[string]string
}

func startTopology(t *testing.T, o topologyOptions) *topology {
	t.Helper()
	root := t.TempDir()
	tp := &topology{t: t, opts: o,
		// Every image runs as uid 65532: it must be able to write the
		// state dir and the stand-in's dir, and read the others.
		dirs: topologyDirs{
			bottle: mkdirMode(t, filepath.Join(root, "bottle"), 0o755),
			shared: mkdirMode(t, filepath.Join(root, "shared"), 0o777),
			state:  mkdirMode(t, filepath.Join(root, "state"), 0o777),
			agent:  mkdirMode(t, filepath.Join(root, "agent"), 0o755),
		},
		ports: topologyPorts{upstream: freePort(t), xds: freePort(t), admin: freePort(t),
			proxy: freePort(t), extProc: freePort(t)},
		secrets: []string{o.login.accessToken, "rt-host-refresh-secret"},
	}
	// The login is a fake one; 0644 lets egressgate's user read it.
	shareTree(t, o.login.home)

	tp.startStandin()
	tp.writeManifest(o.routes...)
	tp.startEgressgate()
	tp.startEnvoy()
	tp.writeAgentEnv()
	return tp
}

// run starts a container of the topology, removed when the test ends and
// its (redacted) log shown first if the test failed.
func (tp *topology) run(name, image string, opts ...testcontainers.ContainerCustomizer) *testcontainers.DockerContainer {
	t := tp.t
	t.Helper()
	opts = append(opts, testcontainers.WithLogger(tclog.TestLogger(t)))
	ctr, err := testcontainers.Run(t.Context(), image, opts...)
	testcontainers.CleanupContainer(t, ctr)
	if ctr != nil {
		// Registered after CleanupContainer, so it runs before it.
		t.Cleanup(func() {
			if t.Failed() {
				tp.dumpLogs(name, ctr)
			}
		})
	}
	require.NoError(t, err, "starting the %s container", name)
	return ctr
}

func (tp *topology) dumpLogs(name string, ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logs, err := containerLogs(ctx, ctr)
	if err != nil {
		tp.t.Logf("%s container logs: %v", name, err)
		return
	}
	tp.t.Logf("%s container logs (last %d KiB):\n%s", name, logTail>>10, tail([]byte(redact(logs, tp.secrets)), logTail))
}

// logsOf is the container's log so far.
func logsOf(t *testing.T, ctr *testcontainers.DockerContainer) string {
	t.Helper()
	logs, err := containerLogs(t.Context(), ctr)
	require.NoError(t, err)
	return logs
}

func (tp *topology) startStandin() {
	t := tp.t
	t.Helper()
	tp.standin = tp.run("standin", toolsImage,
		testcontainers.WithCmd("/standin", "--listen", tp.ports.upstream,
			"--hosts", strings.Join(tp.opts.upstreamHosts, ","), "--ca-out", "/shared/standin-ca.pem"),
		hostNetwork(bind(tp.dirs.shared, "/shared", false)),
		testcontainers.WithWaitStrategy(wait.ForLog("standin serving").WithStartupTimeout(startTimeout)))
	// The stand-in writes its CA before it logs that it serves.
	require.FileExists(t, filepath.Join(tp.dirs.shared, "standin-ca.pem"))
}

// writeManifest (re)writes the bottle manifest: the codex template with
// the host login forwarded, and every given host routed to the stand-in.
func (tp *topology) writeManifest(hosts ...string) {
	var b strings.Builder
	b.WriteString("name: itest\nagent_provider:\n  template: codex\n  forward_host_credentials: true\negress:\n  routes:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "    - host: %s\n      upstream: {address: %q, ca_file: %q}\n", h, tp.ports.upstream, standinCAFromBottle)
	}
	publishFile(tp.t, tp.manifestPath(), b.String())
}

func (tp *topology) manifestPath() string { return filepath.Join(tp.dirs.bottle, "bottle.yaml") }

// envoyAdminSocket is the Envoy container's admin socket, on a tmpfs owned
// by the image's user (65532).
const envoyAdminSocket = "/run/envoy/admin.sock"

// startEgressgate starts `serve --external-envoy` and waits until it has
// written Envoy's bootstrap into the state dir.
func (tp *topology) startEgressgate() {
	tp.t.Helper()
	tp.egressgate = tp.run("egressgate", egressgateImage,
		testcontainers.WithCmd("serve", "--external-envoy",
			"--manifest", "/bottle/bottle.yaml",
			"--state-dir", "/state",
			"--listen", tp.ports.xds,
			"--admin", tp.ports.admin,
			"--proxy", tp.ports.proxy,
			"--extproc-listen", tp.ports.extProc,
			// Envoy mounts the state dir read-only, so its admin socket
			// goes to a tmpfs of its own (startEnvoy).
			"--envoy-admin", envoyAdminSocket,
			"--codex-home", "/codex",
			"--log-level", "debug"),
		hostNetwork(
			bind(tp.dirs.bottle, "/bottle", true),
			bind(tp.dirs.shared, "/shared", true),
			bind(tp.dirs.state, "/state", false),
			// The host's Codex home goes to egressgate, and to no other container.
			bind(tp.opts.login.home, "/codex", true)),
		testcontainers.WithWaitStrategy(wait.ForLog("waiting for an external envoy").WithStartupTimeout(startTimeout)))
}

// startEnvoy starts Envoy on the bootstrap egressgate wrote, and waits for
// egressgate's ready line: Envoy has acknowledged its configuration.
func (tp *topology) startEnvoy() {
	t := tp.t
	t.Helper()
	tp.envoy = tp.run("envoy", envoyImage,
		testcontainers.WithCmd("-c", "/state/itest/envoy.yaml", "--disable-hot-restart", "-l", "info"),
		testcontainers.WithTmpfs(map[string]string{filepath.Dir(envoyAdminSocket): "uid=65532,gid=65532,mode=0700"}),
		hostNetwork(bind(tp.dirs.state, "/state", true)))
	ready := wait.ForLog("egressgate ready").WithStartupTimeout(startTimeout)
	require.NoError(t, ready.WaitUntilReady(t.Context(), tp.egressgate), "egressgate ready")
}

// writeAgentEnv runs `agent-env` on the host, as an operator would, and
// keeps the env file the agent containers get.
func (tp *topology) writeAgentEnv() {
	t := tp.t
	t.Helper()
	out, err := exec.CommandContext(t.Context(), egressgateBin, "agent-env",
		"--manifest", tp.manifestPath(),
		"--out", tp.dirs.agent,
		"--state-dir", tp.dirs.state,
		"--codex-home", tp.opts.login.home,
		"--proxy-url", "http://"+tp.ports.proxy,
		"--ca-path", "/egressgate/ca.pem").CombinedOutput()
	require.NoError(t, err, "agent-env:\n%s", out)
	shareTree(t, tp.dirs.agent) // the agent runs as uid 65532
	require.NoError(t, filepath.WalkDir(tp.dirs.agent, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		for _, s := range tp.secrets {
			// Not NotContains: its failure message would print the file.
			assert.False(t, strings.Contains(string(data), s), "%s holds a host credential", path)
		}
		return err
	}))
	tp.agentEnv = envMap(t, envFileLines(t, filepath.Join(tp.dirs.agent, "env")))
}

// agentResult is what one agent container did.
type agentResult struct {
	exitCode int
	output   string // the probe's status line and body, or its error
}

// standinSeen is the stand-in's account of the request it received.
type standinSeen struct {
	Host                string `json:"host"`
	Method              string `json:"method"`
	Path                string `json:"path"`
	AuthorizationSHA256 string `json:"authorization_sha256"`
	ProxyAuthorization  bool   `json:"proxy_authorization_present"`
	APIKey              bool   `json:"x_api_key_present"`
}

// seen parses the body the stand-in answered (after the status line).
func (r agentResult) seen(t *testing.T) standinSeen {
	t.Helper()
	_, body, ok := strings.Cut(r.output, "\n")
	require.True(t, ok, "no body in the agent's output:\n%s", r.output)
	var s standinSeen
	require.NoError(t, json.Unmarshal([]byte(body), &s), "agent output:\n%s", r.output)
	return s
}

// runAgent runs one agent container: agentprobe GETs url through the
// egress, with the env and files agent-env wrote, and a placeholder
// Authorization header of its own. Only Docker failures fail the test; a
// refused request is a non-zero exit code.
func (tp *topology) runAgent(t *testing.T, url string) agentResult {
	t.Helper()
	ctr, err := testcontainers.Run(t.Context(), toolsImage,
		testcontainers.WithCmd("/agentprobe", url),
		testcontainers.WithEnv(tp.agentEnv),
		hostNetwork(bind(tp.dirs.agent, "/egressgate", true)),
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(agentTimeout)),
		testcontainers.WithLogger(tclog.TestLogger(t)))
	defer func() { assert.NoError(t, testcontainers.TerminateContainer(ctr)) }()
	require.NoError(t, err, "running the agent")
	state, err := ctr.State(t.Context())
	require.NoError(t, err)
	logs, err := containerLogs(t.Context(), ctr)
	require.NoError(t, err)
	return agentResult{exitCode: state.ExitCode, output: redact(logs, tp.secrets)}
}

// startInfo is when a container last started, and how often Docker has
// restarted it.
type startInfo struct {
	at       string
	restarts int
	running  bool
}

func startInfoOf(t *testing.T, ctr *testcontainers.DockerContainer) startInfo {
	t.Helper()
	info, err := ctr.Inspect(t.Context())
	require.NoError(t, err)
	return startInfo{at: info.State.StartedAt, restarts: info.RestartCount, running: info.State.Running}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestContainerTopology runs the stack as containers, sharing one
// topology across the cases to save start-ups; the runtime route change
// comes last because it edits the manifest.
func TestContainerTopology(t *testing.T) {
	containerSuite(t)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	// Every template host goes to the stand-in: an Envoy cluster for a
	// real host name would resolve it, and tests talk only to loopback.
	routes := []string{"chatgpt.com", "auth.openai.com", "api.example.test"}
	tp := startTopology(t, topologyOptions{
		login:         login,
		routes:        routes,
		upstreamHosts: append(routes, "new.example.test"),
	})

	t.Run("token injected for chatgpt.com", func(t *testing.T) {
		res := tp.runAgent(t, "https://chatgpt.com/backend-api/codex/responses")
		require.Zero(t, res.exitCode, res.output)
		seen := res.seen(t)
		assert.Equal(t, "/backend-api/codex/responses", seen.Path)
		assert.Equal(t, sha256Hex("Bearer "+login.accessToken), seen.AuthorizationSHA256,
			"the upstream must see the host's token, not the agent's placeholder")
	})

	t.Run("agent credentials stripped", func(t *testing.T) {
		res := tp.runAgent(t, "https://api.example.test/x")
		require.Zero(t, res.exitCode, res.output)
		seen := res.seen(t)
		assert.Equal(t, "api.example.test", seen.Host)
		assert.Empty(t, seen.AuthorizationSHA256, "the agent's own Authorization reached the upstream")
		assert.False(t, seen.ProxyAuthorization)
		assert.False(t, seen.APIKey)
	})

	t.Run("unknown host refused", func(t *testing.T) {
		res := tp.runAgent(t, "https://evil.example.test/")
		assert.NotZero(t, res.exitCode, res.output)
		// Go's proxy client reports a refused CONNECT by its status text.
		assert.Regexp(t, `Forbidden|403`, res.output)
		logs := logsOf(t, tp.standin)
		require.Contains(t, logs, "standin serving", "the stand-in's log was read")
		assert.NotContains(t, logs, "evil.example.test", "a refused request reached the upstream")
	})

	t.Run("route added at runtime served without a restart", func(t *testing.T) {
		url := "https://new.example.test/added"
		envoyBefore, egressgateBefore := startInfoOf(t, tp.envoy), startInfoOf(t, tp.egressgate)
		res := tp.runAgent(t, url)
		require.NotZero(t, res.exitCode, "new.example.test served before the manifest names it:\n%s", res.output)

		tp.writeManifest(append(routes, "new.example.test")...)
		eventually(t, reloadTimeout, "new.example.test served", func() bool {
			res = tp.runAgent(t, url)
			return res.exitCode == 0
		})
		seen := res.seen(t)
		assert.Equal(t, "new.example.test", seen.Host)
		assert.Equal(t, "/added", seen.Path)

		envoyAfter := startInfoOf(t, tp.envoy)
		assert.True(t, envoyAfter.running)
		assert.Zero(t, envoyAfter.restarts)
		assert.Equal(t, envoyBefore, envoyAfter, "Envoy was restarted")
		assert.Equal(t, egressgateBefore, startInfoOf(t, tp.egressgate), "egressgate was restarted")
	})

	// Runs after every request above, at egressgate's debug log level.
	t.Run("host credentials never in container logs", func(t *testing.T) {
		for name, ctr := range map[string]*testcontainers.DockerContainer{
			"standin": tp.standin, "egressgate": tp.egressgate, "envoy": tp.envoy,
		} {
			logs := logsOf(t, ctr)
			require.NotEmpty(t, logs, name)
			for _, s := range tp.secrets {
				assert.False(t, strings.Contains(logs, s), "the %s log holds a host credential", name)
			}
		}
	})
}
