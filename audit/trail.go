package audit

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Backups are the rotated files of the audit log at path, oldest first:
// the sink's rotation (lumberjack) renames a full log to
// NAME-<UTC timestamp>.EXT and compresses it to NAME-<timestamp>.EXT.gz,
// so the timestamp orders them.
func Backups(path string) ([]string, error) {
	ext := filepath.Ext(path)
	prefix := strings.TrimSuffix(filepath.Base(path), ext) + "-"
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(name, prefix) &&
			(strings.HasSuffix(name, ext) || strings.HasSuffix(name, ext+".gz")) {
			out = append(out, filepath.Join(filepath.Dir(path), name))
		}
	}
	slices.Sort(out)
	return out, nil
}

// TailFiles is Tail over the audit log at path and, when path's own
// records are fewer than n, its backups, newest first, until n are found.
// A missing path with no backups is fs.ErrNotExist.
func TailFiles(path string, f Filter, n int) (records []Record, bad int, err error) {
	backups, err := Backups(path)
	if err != nil {
		return nil, 0, err
	}
	files := append(backups, path)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if len(backups) == 0 {
			return nil, 0, fmt.Errorf("%s: %w", path, os.ErrNotExist)
		}
		files = backups // rotated just now: the backups remain
	}
	for i := len(files) - 1; i >= 0 && len(records) < n; i-- {
		got, b, err := tailFile(files[i], f, n-len(records))
		if err != nil {
			return nil, bad, fmt.Errorf("reading %s: %w", files[i], err)
		}
		records, bad = append(got, records...), bad+b
	}
	return records, bad, nil
}

// tailFile is Tail of one file, decompressing a .gz backup.
func tailFile(path string, f Filter, n int) ([]Record, int, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer file.Close()
	var r io.Reader = file
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(file)
		if err != nil {
			return nil, 0, err
		}
		defer z.Close()
		r = z
	}
	return Tail(r, f, n)
}
