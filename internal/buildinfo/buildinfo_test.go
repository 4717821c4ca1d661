package buildinfo

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFromBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want Info
		line string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			Info{Version: "v1.2.3", GoVersion: "go1.26.8"}, "v1.2.3 (go1.26.8)"},
		{"checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}},
			Info{Version: "devel", Revision: "0123456789ab", GoVersion: "go1.26.8"}, "devel (revision 0123456789ab, go1.26.8)"},
		{"dirty checkout", debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			Info{Version: "devel", Revision: "abc-dirty", GoVersion: "go1.26.8"}, "devel (revision abc-dirty, go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(&tt.bi)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.line, got.String())
		})
	}
	assert.NotEmpty(t, Read().GoVersion, "a test binary has build info")
}
