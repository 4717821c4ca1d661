package config

import (
	"path/filepath"
	"slices"
)

// ManifestInputs is Policy.Inputs for a manifest that did not load: only
// the manifest itself, whose next edit may fix it. If the working
// directory cannot be found, the path comes back cleaned but relative.
func ManifestInputs(manifestPath string) []string {
	return []string{absPath(manifestPath)}
}

func absPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	return abs
}

// inputs lists the files p was compiled from, for Policy.Inputs. Token
// files come from the slots, so a missing one is listed too: its
// appearance must trigger a reload. The Codex auth.json has a slot only
// while forward_host_credentials is true, so egressgate does not even
// watch it otherwise (invariant 5).
func inputs(manifest string, p *Policy) []string {
	files := []string{manifest}
	for _, r := range p.Routes {
		if r.Upstream.CAFile != "" {
			files = append(files, r.Upstream.CAFile)
		}
	}
	for _, s := range p.Slots {
		if s.Source.Kind == SourceFile || s.Source.Kind == SourceCodex || s.Source.Kind == SourceClaude {
			files = append(files, s.Source.Ref)
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}
