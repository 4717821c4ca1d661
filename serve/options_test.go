package serve

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDefaultExtProcListen(t *testing.T) {
	dir := t.TempDir()
	assert.Equal(t, "unix:"+filepath.Join(dir, "extproc.sock"), defaultExtProcListen(dir, false))
	assert.Equal(t, "127.0.0.1:0", defaultExtProcListen(dir, true), "an external Envoy may not see the state dir")
	long := filepath.Join(dir, strings.Repeat("d", maxUnixPath))
	assert.Equal(t, "127.0.0.1:0", defaultExtProcListen(long, false), "too long for a socket address")
}
