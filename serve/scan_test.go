package serve

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

// TestAdmitsMore: a generation needs the staged step when it opens a host
// the proxy listener does not admit now, or admits one in another TLS
// mode; not when it keeps or closes hosts.
func TestAdmitsMore(t *testing.T) {
	served := map[string]config.TLSMode{"a.test": config.Intercept, "b.test": config.Passthrough}
	route := func(host string, mode config.TLSMode) config.Route { return config.Route{Host: host, TLS: mode} }
	tests := []struct {
		name   string
		routes []config.Route
		want   bool
	}{
		{"same hosts", []config.Route{route("a.test", config.Intercept), route("b.test", config.Passthrough)}, false},
		{"a host closed", []config.Route{route("a.test", config.Intercept)}, false},
		{"no hosts", nil, false},
		{"a host opened", []config.Route{route("a.test", config.Intercept), route("c.test", config.Intercept)}, true},
		{"passthrough now intercepted", []config.Route{route("b.test", config.Intercept)}, true},
		{"intercepted now passthrough", []config.Route{route("a.test", config.Passthrough)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, admitsMore(&config.Policy{Routes: tt.routes}, served))
		})
	}
}

// TestScanManifests: a file argument is itself whatever its name; a
// directory stands for its *.md, *.yaml and *.yml files, sorted, not its
// hidden files, subdirectories or other files; a path named twice counts
// once, also when a named file is in a named directory; a missing file
// stays a bottle (its reload reports the error).
func TestScanManifests(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.md", "c.yml", "notes.txt", ".hidden.yaml", "README", "sub/d.yaml", "bottle.conf"} {
		path := filepath.Join(dir, "bottles", f)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		require.NoError(t, os.WriteFile(path, nil, 0o600))
	}
	bottles := filepath.Join(dir, "bottles")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o700))
	in := func(f string) string { return filepath.Join(bottles, f) }
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{"a file of any name", []string{in("bottle.conf")}, []string{in("bottle.conf")}, ""},
		{"a directory", []string{bottles}, []string{in("a.md"), in("b.yaml"), in("c.yml")}, ""},
		{"a subdirectory named", []string{filepath.Join(bottles, "sub")}, []string{in("sub/d.yaml")}, ""},
		{"files and a directory", []string{in("notes.txt"), bottles}, []string{in("notes.txt"), in("a.md"), in("b.yaml"), in("c.yml")}, ""},
		{"the same file twice", []string{in("a.md"), in("a.md")}, []string{in("a.md")}, ""},
		{"an empty directory", []string{empty}, nil, ""},
		{"a missing file", []string{in("b.yaml"), in("gone.yaml")}, []string{in("b.yaml"), in("gone.yaml")}, ""},
		{"a named file in a named directory", []string{in("b.yaml"), bottles}, []string{in("b.yaml"), in("a.md"), in("c.yml")}, ""},
		{"nothing", nil, nil, "no manifest given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanManifests(tt.args)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
