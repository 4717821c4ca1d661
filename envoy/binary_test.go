package envoy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeBinary writes an executable file named envoy into a new directory.
func fakeBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755))
	return path
}

func TestFindBinaryPrecedence(t *testing.T) {
	flagBin, envBin, pathBin := fakeBinary(t), fakeBinary(t), fakeBinary(t)
	tests := []struct {
		name     string
		flag     string
		env      string
		path     string
		want     string
		wantErrs []string
	}{
		{name: "flag wins", flag: flagBin, env: envBin, path: filepath.Dir(pathBin), want: flagBin},
		{name: "env over PATH", env: envBin, path: filepath.Dir(pathBin), want: envBin},
		{name: "PATH last", path: filepath.Dir(pathBin), want: pathBin},
		{name: "bad flag does not fall through", flag: "/nonexistent/envoy", env: envBin, wantErrs: []string{"--envoy", "/nonexistent/envoy"}},
		{name: "bad env does not fall through", env: "/nonexistent/envoy", path: filepath.Dir(pathBin), wantErrs: []string{"$ENVOY_BIN"}},
		{name: "none", path: t.TempDir(), wantErrs: []string{"scripts/setup-envoy.sh", "$ENVOY_BIN", "--envoy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ENVOY_BIN", tt.env)
			t.Setenv("PATH", tt.path)
			got, err := FindBinary(tt.flag)
			if len(tt.wantErrs) > 0 {
				for _, want := range tt.wantErrs {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestFindBinaryRejectsNonExecutable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envoy")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	t.Setenv("ENVOY_BIN", "")
	_, err := FindBinary(path)
	require.ErrorContains(t, err, "--envoy")
}
