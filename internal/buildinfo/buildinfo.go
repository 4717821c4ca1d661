// Package buildinfo says which egressgate this is, from what the Go
// toolchain records in every binary: the module version and, for a build
// from a git checkout, the commit and whether the tree had changes.
package buildinfo

import (
	"runtime/debug"
)

// Info is one build of egressgate.
type Info struct {
	// Version is the module version ("v1.2.3", or "devel" for a build
	// from a checkout).
	Version string `json:"version"`
	// Revision is the commit the binary was built from, with "-dirty"
	// when the tree had uncommitted changes; "" when unknown.
	Revision  string `json:"revision,omitempty"`
	GoVersion string `json:"go_version"`
}

// Read returns the running binary's build.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
			if len(info.Revision) > 12 {
				info.Revision = info.Revision[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "" {
		info.Revision += "-dirty"
	}
	return info
}

// String is the build in one line: "devel (revision 1a2b3c4d5e6f, go1.26.8)".
func (i Info) String() string {
	s := i.Version + " ("
	if i.Revision != "" {
		s += "revision " + i.Revision + ", "
	}
	return s + i.GoVersion + ")"
}
