package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModuleRoot(t *testing.T) {
	root := ModuleRoot(t)
	_, err := os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "internal", "testenv", "testenv.go"))
}

func TestEnvoyBinaryPrefersEnv(t *testing.T) {
	t.Setenv("ENVOY_BIN", "/opt/custom/envoy")
	require.Equal(t, "/opt/custom/envoy", EnvoyBinary(t))
}

func TestEnvoyBinaryFromTools(t *testing.T) {
	t.Setenv("ENVOY_BIN", "")
	bin := EnvoyBinary(t) // skips (or fails in CI) when setup has not run
	require.Equal(t, filepath.Join(ModuleRoot(t), ".tools", "bin", "envoy"), bin)
}
