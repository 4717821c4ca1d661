package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/internal/buildinfo"
)

func TestVersion(t *testing.T) {
	want := "egressgate " + buildinfo.Read().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runCLI(t, args...)
		require.Equal(t, exitOK, code, stderr)
		assert.Equal(t, want, stdout, "%v", args)
	}
}

// TestLogFormat: --log-format json writes one JSON object a line, text
// writes key=value, and anything else is refused by name.
func TestLogFormat(t *testing.T) {
	var out bytes.Buffer
	logger, err := logFlags{level: slog.LevelInfo, format: "json"}.logger(&out)
	require.NoError(t, err)
	logger.Info("configuration applied", "bottle", "demo")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &rec))
	assert.Equal(t, "configuration applied", rec["msg"])
	assert.Equal(t, "demo", rec["bottle"])

	out.Reset()
	logger, err = logFlags{level: slog.LevelInfo, format: "text"}.logger(&out)
	require.NoError(t, err)
	logger.Info("configuration applied", "bottle", "demo")
	assert.Contains(t, out.String(), `msg="configuration applied" bottle=demo`)

	code, _, stderr := runCLI(t, "serve", "--manifest", "../../examples/quickstart.md", "--log-format", "xml")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, stderr, `--log-format "xml": want text or json`)
}
