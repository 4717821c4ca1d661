package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveEnvoyAdmin(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	tests := []struct {
		name     string
		path     string
		ownEnvoy bool
		want     string
		wantErr  string
	}{
		{name: "default", path: "", want: ""},
		{name: "absolute", path: "/run/envoy/admin.sock", want: "/run/envoy/admin.sock"},
		{name: "relative, own envoy", path: "admin.sock", ownEnvoy: true, want: filepath.Join(wd, "admin.sock")},
		{name: "relative, external envoy", path: "admin.sock", wantErr: "absolute path"},
		{name: "old loopback address", path: "127.0.0.1:9901", ownEnvoy: true, wantErr: "no longer listens on TCP"},
		{name: "old port 0", path: "127.0.0.1:0", wantErr: "no longer listens on TCP"},
		{name: "too long", path: "/" + strings.Repeat("a", 200), wantErr: "over the 107"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveEnvoyAdmin(tt.path, tt.ownEnvoy)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), "--envoy-admin"), "names the flag: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWriteBootstrapPutsAdminSocketBesideIt(t *testing.T) {
	dir := t.TempDir()
	path, err := writeBootstrap(dir, "demo", "127.0.0.1:18000", "", "", "")
	require.NoError(t, err)
	boot, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(boot), `path: "`+filepath.Join(dir, "demo", adminSocketName)+`"`)
}

// A state dir deep enough to push the default socket past sun_path must
// fail with the path in the message, not when Envoy starts.
func TestWriteBootstrapRefusesTooLongSocketPath(t *testing.T) {
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	_, err := writeBootstrap(deep, "demo", "127.0.0.1:18000", "", "", "")
	require.ErrorContains(t, err, filepath.Join(deep, "demo", adminSocketName))
	require.ErrorContains(t, err, "--envoy-admin")
}
