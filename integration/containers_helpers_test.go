package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/egressgate/egressgate/internal/testenv"
)

// The images the container suite runs, as scripts/build-images.sh tags
// them. None is ever pulled: the script builds all three from this
// checkout (and the pinned Envoy) before the first container starts.
const (
	egressgateImage = "egressgate:dev"
	envoyImage      = "egressgate/envoy:1.40.0"
	toolsImage      = "egressgate/tools:dev"
)

// imageBuildTimeout bounds scripts/build-images.sh: two static Go builds
// and three `docker build`s from local files (about 40 s on CI machines).
const imageBuildTimeout = 5 * time.Minute

// images builds the suite's images once per test process, whichever
// container test asks first.
var images struct {
	once sync.Once
	out  []byte
	err  error
}

// containerSuite prepares a container test: Docker must answer (a test
// fails without it under CI, and is skipped elsewhere, as for a missing
// Envoy), and the images are built.
func containerSuite(t *testing.T) {
	t.Helper()
	// The tests remove their containers themselves (t.Cleanup), and the
	// Ryuk reaper's image cannot be pulled where no registry is reachable.
	// It must be decided before testcontainers reads its configuration,
	// which it does once per process; an explicit setting wins.
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if err := dockerHealth(t); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no usable Docker daemon: %v", err)
		}
		t.Skipf("no usable Docker daemon (%v); the container suite needs one", err)
	}
	root := testenv.ModuleRoot(t)
	images.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "build-images.sh"))
		cmd.Dir = root
		images.out, images.err = cmd.CombinedOutput()
	})
	if images.err != nil {
		t.Fatalf("scripts/build-images.sh: %v\n%s", images.err, images.out)
	}
}

// dockerHealth reports why Docker cannot run the suite, if it cannot.
// Both clients must reach a daemon: the CLI, which scripts/build-images.sh
// uses, and testcontainers' own (it falls back to the default socket when
// DOCKER_HOST does not answer, so one check does not vouch for the other).
func dockerHealth(t *testing.T) error {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return fmt.Errorf("docker version: %w: %s", err, bytes.TrimSpace(out))
	}
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.TestLogger(t)))
	if err != nil {
		return err
	}
	return p.Health(ctx) // Health closes the provider
}

// hostNetwork runs a container in the host's network namespace, with the
// given bind mounts: every address of the topology is a loopback port.
func hostNetwork(binds ...string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.NetworkMode = "host"
		hc.Binds = append(hc.Binds, binds...)
	})
}

// bind is a bind mount in docker's "HOST:CONTAINER[:ro]" form.
func bind(host, target string, readOnly bool) string {
	if readOnly {
		return host + ":" + target + ":ro"
	}
	return host + ":" + target
}

// containerLogs is everything the container wrote, stdout and stderr
// interleaved.
func containerLogs(ctx context.Context, ctr *testcontainers.DockerContainer) (string, error) {
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// redact replaces every secret in s, so that a log dumped for a failing
// test never prints a credential even if the code under test leaked it.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// mkdirMode makes dir with exactly perm, whatever the umask.
func mkdirMode(t testing.TB, dir string, perm fs.FileMode) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, perm))
	require.NoError(t, os.Chmod(dir, perm))
	return dir
}

// shareTree makes dir readable by the containers' user (uid 65532):
// directories 0755, files 0644.
func shareTree(t testing.TB, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, 0o755)
		}
		return os.Chmod(path, 0o644)
	}))
}

// publishFile replaces path the way replaceFile does (a new file renamed
// over the old one), but readable by the containers' user: the mode is set
// before the rename, so a watcher in a container never sees a file it
// cannot read.
func publishFile(t testing.TB, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(text), 0o644))
	require.NoError(t, os.Chmod(tmp, 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// envMap turns envFileLines' KEY=VALUE lines into testcontainers' env.
func envMap(t testing.TB, lines []string) map[string]string {
	t.Helper()
	env := make(map[string]string, len(lines))
	for _, line := range lines {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "env file line without '=': %q", line)
		env[k] = v
	}
	return env
}
