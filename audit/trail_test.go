package audit

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeLog writes records as an audit log at path, gzipped for a .gz path.
func writeLog(t *testing.T, path string, records ...Record) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var w io.Writer = f
	var z *gzip.Writer
	if filepath.Ext(path) == ".gz" {
		z = gzip.NewWriter(f)
		w = z
	}
	enc := json.NewEncoder(w)
	for _, r := range records {
		require.NoError(t, enc.Encode(r))
	}
	if z != nil {
		require.NoError(t, z.Close())
	}
}

func refusal(at time.Time, host string) Record {
	return Record{Time: at, Bottle: "demo", Kind: KindConnect, Method: "CONNECT", Host: host, Port: 443, Decision: Refused, Status: 403}
}

// TestTailFilesReachesIntoBackups: the last refusals may be older than the
// last rotation; they are read from the compressed backups, newest first,
// and returned oldest first.
func TestTailFilesReachesIntoBackups(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, FileName)
	writeLog(t, filepath.Join(dir, "audit-2026-12-04T10-00-00.000.log.gz"), refusal(at, "a.test"), refusal(at.Add(time.Second), "b.test"))
	writeLog(t, filepath.Join(dir, "audit-2026-12-04T11-00-00.000.log.gz"), refusal(at.Add(2*time.Second), "c.test"))
	writeLog(t, filepath.Join(dir, "unrelated-2026.log"), refusal(at, "not-ours.test"))
	writeLog(t, path, refusal(at.Add(3*time.Second), "d.test"))

	hosts := func(rs []Record) (out []string) {
		for _, r := range rs {
			out = append(out, r.Host)
		}
		return out
	}
	got, _, err := TailFiles(path, Filter{}, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"b.test", "c.test", "d.test"}, hosts(got))

	got, _, err = TailFiles(path, Filter{}, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.test", "b.test", "c.test", "d.test"}, hosts(got))

	got, _, err = TailFiles(path, Filter{}, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"d.test"}, hosts(got), "the current file alone when it has enough")

	require.NoError(t, os.Remove(path))
	got, _, err = TailFiles(path, Filter{}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"b.test", "c.test"}, hosts(got), "just rotated: the backups remain")

	_, _, err = TailFiles(filepath.Join(t.TempDir(), FileName), Filter{}, 2)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
