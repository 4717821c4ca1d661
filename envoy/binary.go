package envoy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// setupHint names every way to provide an Envoy binary.
const setupHint = "pass --envoy PATH, set $ENVOY_BIN, or run scripts/setup-envoy.sh (installs .tools/bin/envoy)"

// FindBinary returns the Envoy binary to run: flagValue (--envoy) if set,
// else $ENVOY_BIN, else envoy on $PATH. A value that is set but unusable is
// an error rather than a reason to fall through: running a different Envoy
// than the one asked for would be a surprise.
func FindBinary(flagValue string) (string, error) {
	switch {
	case flagValue != "":
		return lookPath(flagValue, "--envoy")
	case os.Getenv("ENVOY_BIN") != "":
		return lookPath(os.Getenv("ENVOY_BIN"), "$ENVOY_BIN")
	}
	bin, err := exec.LookPath("envoy")
	if err != nil {
		return "", fmt.Errorf("no envoy binary on $PATH: %s", setupHint)
	}
	return bin, nil
}

func lookPath(value, source string) (string, error) {
	bin, err := exec.LookPath(value)
	if err != nil {
		return "", fmt.Errorf("envoy binary from %s: %w; %s", source, err, setupHint)
	}
	return bin, nil
}

// validateTailLines is how much of Envoy's output a failed validation
// reports: the reason is on the last lines, the rest is startup noise.
const validateTailLines = 15

// Validate checks a bootstrap with `envoy --mode validate`, which parses
// the config and builds the server without binding any socket.
func Validate(ctx context.Context, bin, configPath string) error {
	cmd := exec.CommandContext(ctx, bin, "--mode", "validate", "-c", configPath,
		"--disable-hot-restart", "-l", "warning")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("envoy --mode validate -c %s: %w\n%s", configPath, err, lastLines(out.String(), validateTailLines))
	}
	return nil
}

// lastLines returns the last n lines of Envoy output s, without a
// trailing newline and with any token redacted: callers quote them.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return redactTokens(strings.Join(lines, "\n"))
}
