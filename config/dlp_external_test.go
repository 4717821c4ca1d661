package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

// TestDLPAgreesWithScanner: config cannot import package dlp (dlp imports
// config), so this external test checks that what a manifest may say is
// what a dlp scanner takes: the same shortest literal, fingerprints as dlp
// makes them, and rules that build a scanner.
func TestDLPAgreesWithScanner(t *testing.T) {
	require.Equal(t, dlp.MinLiteralLen, config.DLPMinLiteralLen)

	fp := dlp.Fingerprint([]byte("a value someone let through"))
	manifest := "name: demo\ndlp:\n  patterns:\n" +
		"    - {name: corp-token, regex: 'corp_[A-Za-z0-9]{32}'}\n" +
		"    - {name: codename, literal: '12345678'}\n" +
		"  allow: ['" + fp + "']\n"
	path := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(path, []byte(manifest), 0o600))
	p, err := config.Load(path, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	require.NoError(t, err)
	require.Equal(t, []string{fp}, p.DLPRules.Allow)

	var patterns []dlp.Pattern
	for _, pat := range p.DLPRules.Patterns {
		patterns = append(patterns, dlp.Pattern{Name: pat.Name, Literal: pat.Literal, Regex: pat.Regex})
	}
	_, err = dlp.New(dlp.Config{Patterns: patterns})
	require.NoError(t, err, "a manifest that loads builds a scanner")
}
