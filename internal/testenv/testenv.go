// Package testenv finds what tests need from the machine they run on: the
// module root and the pinned Envoy binary installed by scripts/setup-envoy.sh.
package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// setupHint tells a developer how to get an Envoy binary for the tests.
const setupHint = "run scripts/setup.sh (installs .tools/bin/envoy, codex and claude) or set $ENVOY_BIN / $CODEX_BIN / $CLAUDE_BIN"

// EnvoyBinary returns the Envoy binary tests should run: $ENVOY_BIN if set,
// else <module root>/.tools/bin/envoy. Without one, a test is skipped on a
// developer machine but fails in CI (CI non-empty), so a CI run can never
// pass by silently skipping every data-plane test.
func EnvoyBinary(t testing.TB) string {
	t.Helper()
	return tool(t, "ENVOY_BIN", "envoy")
}

// CodexBinary returns the pinned Codex CLI: $CODEX_BIN if set, else
// <module root>/.tools/bin/codex (installed by scripts/setup.sh). Missing,
// it fails the test under CI and skips it elsewhere, like EnvoyBinary.
func CodexBinary(t testing.TB) string {
	t.Helper()
	return tool(t, "CODEX_BIN", "codex")
}

// ClaudeBinary returns the pinned Claude Code CLI: $CLAUDE_BIN if set, else
// <module root>/.tools/bin/claude (installed by scripts/setup.sh), failing
// under CI and skipping elsewhere when missing.
func ClaudeBinary(t testing.TB) string {
	t.Helper()
	return tool(t, "CLAUDE_BIN", "claude")
}

func tool(t testing.TB, envVar, name string) string {
	t.Helper()
	if bin := os.Getenv(envVar); bin != "" {
		return bin
	}
	root, err := findModuleRoot()
	if err == nil {
		bin := filepath.Join(root, ".tools", "bin", name)
		if isExecutable(bin) {
			return bin
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no %s binary: %s", name, setupHint)
	}
	t.Skipf("no %s binary: %s", name, setupHint)
	return ""
}

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory (go test runs each package in its own directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := findModuleRoot()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// isExecutable reports whether path (after following symlinks) is a regular
// file with an execute bit, so a dangling .tools/bin/envoy link counts as
// missing rather than failing later with a confusing exec error.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
