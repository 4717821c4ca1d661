package canary

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

func TestRecordAndLoad(t *testing.T) {
	state := t.TempDir()
	s := Generate(testNow)
	require.NoError(t, Record(state, "demo", s))

	path := filepath.Join(state, "demo", "canaries.json")
	require.Equal(t, path, Path(state, "demo"))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	dir, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dir.Mode().Perm())
	leftovers, err := filepath.Glob(filepath.Join(state, "demo", ".*tmp*"))
	require.NoError(t, err)
	require.Empty(t, leftovers, "written through a temporary file, renamed")

	got, err := Load(state, "demo")
	require.NoError(t, err)
	short := s.Run[:8]
	require.Equal(t, []string{AWSAccessKeyID + "@" + short, AWSSecretAccessKey + "@" + short, GitHubToken + "@" + short}, names(got))
	for _, n := range got {
		kind, _, _ := strings.Cut(n.Name, "@")
		require.True(t, n.Value.Reveal() == s.Value(kind).Reveal(), "%s loads as recorded", n.Name)
	}
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", got, got, s), s.Value(GitHubToken).Reveal(), "printing never shows a value")

	runs, err := Runs(state, "demo")
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, s.Run, runs[0].Run)
	require.True(t, s.Created.Equal(runs[0].Created))
}

func TestLoadMissingIsNone(t *testing.T) {
	got, err := Load(t.TempDir(), "demo")
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestRecordKeepsLastRuns: the file keeps the last Keep runs, oldest
// first, so agents started by the runs before still have their canaries
// watched for.
func TestRecordKeepsLastRuns(t *testing.T) {
	state := t.TempDir()
	var all []Set
	for i := range Keep + 3 {
		s := Generate(testNow.Add(time.Duration(i) * time.Minute))
		all = append(all, s)
		require.NoError(t, Record(state, "demo", s))
	}
	runs, err := Runs(state, "demo")
	require.NoError(t, err)
	require.Len(t, runs, Keep)
	for i, r := range runs {
		want := all[len(all)-Keep+i]
		require.Equal(t, want.Run, r.Run, "run %d", i)
		require.True(t, want.Created.Equal(r.Created), "run %d keeps its creation time", i)
	}
	got, err := Load(state, "demo")
	require.NoError(t, err)
	require.Len(t, got, 3*Keep)
	require.Equal(t, AWSAccessKeyID+"@"+all[3].Run[:8], got[0].Name, "the oldest kept run comes first")
}

// TestRecordConcurrent: agent-env runs at the same time each add their
// set; none is lost to another's rewrite.
func TestRecordConcurrent(t *testing.T) {
	state := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, Keep)
	for i := range Keep {
		wg.Go(func() { errs <- Record(state, "demo", Generate(testNow.Add(time.Duration(i)*time.Second))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	runs, err := Runs(state, "demo")
	require.NoError(t, err)
	require.Len(t, runs, Keep)
}

func TestRecordOnlyPlanted(t *testing.T) {
	state := t.TempDir()
	s := Generate(testNow).Only(GitHubToken)
	require.NoError(t, Record(state, "demo", s))
	got, err := Load(state, "demo")
	require.NoError(t, err)
	require.Equal(t, []string{GitHubToken + "@" + s.Run[:8]}, names(got))
}

// TestLoadRefusesBadFiles: a file that does not load is an error naming
// it and never quoting what it holds; Record refuses to replace it.
func TestLoadRefusesBadFiles(t *testing.T) {
	const value = "ghp_DoNotPrintThisValue0123456789abcd"
	run := func(canaries string) string {
		return `{"version":1,"runs":[{"run":"0123456789abcdef","created":"2026-11-28T09:00:00Z","canaries":` + canaries + `}]}`
	}
	tests := []struct {
		name, text, want string
	}{
		{"not JSON", `{"version":1,"runs":[` + value, "not JSON"},
		{"value where a kind goes", run(`{"` + value + `":"` + value + `"}`), "kind"},
		{"short value", run(`{"github-token":"ghp_x"}`), "github-token is shorter than 8 bytes"},
		{"wrong type", run(`{"github-token":12345678}`), "is not a string"},
		{"bad time", `{"version":1,"runs":[{"run":"0123456789abcdef","created":"` + value + `","canaries":{"github-token":"` + value + `"}}]}`, "does not parse"},
		{"no canaries", run(`{}`), "no canaries"},
		{"version", `{"version":2,"runs":[]}`, "version 2"},
		{"bad run id", `{"version":1,"runs":[{"run":"` + value + `","created":"2026-11-28T09:00:00Z","canaries":{"github-token":"` + value + `"}}]}`, "run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			path := Path(state, "demo")
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
			require.NoError(t, os.WriteFile(path, []byte(tt.text), 0o600))

			_, err := Load(state, "demo")
			require.Error(t, err)
			msg := err.Error()
			require.True(t, strings.Contains(msg, path), "the error names the file: %s", redact(msg, value))
			require.True(t, strings.Contains(msg, tt.want), "want %q in: %s", tt.want, redact(msg, value))
			require.False(t, strings.Contains(msg, value), "the error quotes a value: %s", redact(msg, value))

			err = Record(state, "demo", Generate(testNow))
			require.Error(t, err)
			require.Contains(t, redact(err.Error(), value), "move it aside")
			data, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.True(t, string(data) == tt.text, "the damaged file is left as it was")
		})
	}
}

func TestLoadRefusesWideMode(t *testing.T) {
	state := t.TempDir()
	require.NoError(t, Record(state, "demo", Generate(testNow)))
	require.NoError(t, os.Chmod(Path(state, "demo"), 0o644))
	_, err := Load(state, "demo")
	require.ErrorContains(t, err, "chmod 600")
}

func TestRecordRefuses(t *testing.T) {
	state := t.TempDir()
	for _, bottle := range []string{"", "..", "a/b"} {
		require.ErrorContains(t, Record(state, bottle, Generate(testNow)), "not a bottle name")
	}
	short := Set{Run: "0123456789abcdef", Created: testNow, Values: map[string]config.Secret{GitHubToken: config.NewSecret("ghp_x")}}
	require.ErrorContains(t, Record(state, "demo", short), "shorter than 8 bytes")
	require.ErrorContains(t, Record(state, "demo", Set{Run: "0123456789abcdef", Created: testNow}), "no canaries")
	require.NoFileExists(t, Path(state, "demo"))
}

func names(ns []dlp.Named) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// redact keeps a failure message from printing the test's value.
func redact(s, value string) string { return strings.ReplaceAll(s, value, "<value>") }

// TestRecordKeepsTheNewestWhateverItsClock: a run recorded with a clock
// set back is still the newest, and is kept.
func TestRecordKeepsTheNewestWhateverItsClock(t *testing.T) {
	state := t.TempDir()
	for i := range Keep {
		require.NoError(t, Record(state, "demo", Generate(testNow.Add(time.Duration(i)*time.Hour))))
	}
	late := Generate(testNow.Add(-24 * time.Hour))
	require.NoError(t, Record(state, "demo", late))
	runs, err := Runs(state, "demo")
	require.NoError(t, err)
	require.Len(t, runs, Keep)
	require.Equal(t, late.Run, runs[Keep-1].Run)
}
