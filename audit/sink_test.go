package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSinkWritesJSONLines: records reach the file, one JSON object a
// line, and stdout when asked.
func TestSinkWritesJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var stdout lockedBuffer
	s := NewSink(context.Background(), Options{File: path, Stdout: &stdout})
	for i := range 3 {
		s.Write(Record{Time: t0, Bottle: "demo", Kind: KindRequest, Host: "chatgpt.com", Path: "/" + string(rune('a'+i)), Decision: Forwarded, Status: 200})
	}
	s.Close()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		paths = append(paths, r.Path)
	}
	assert.Equal(t, []string{"/a", "/b", "/c"}, paths)
	assert.Equal(t, 3, countLines(stdout.String()))
	assert.Zero(t, s.Dropped())
}

// TestSinkNeverBlocks: a writer that hangs holds up no Write; what does
// not fit is dropped and counted.
func TestSinkNeverBlocks(t *testing.T) {
	stuck := &blockingWriter{release: make(chan struct{})}
	s := NewSink(context.Background(), Options{Stdout: stuck})
	done := make(chan struct{})
	go func() {
		for range queueSize + 100 {
			s.Write(Record{Kind: KindRequest})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked behind a stuck writer")
	}
	assert.GreaterOrEqual(t, s.Dropped(), uint64(99))
	close(stuck.release)
	s.Close()
}

// TestSinkCountsWriteFailures: a file that cannot be written loses records,
// counted, and the sink keeps going.
func TestSinkCountsWriteFailures(t *testing.T) {
	s := NewSink(context.Background(), Options{Stdout: failingWriter{}})
	s.Write(Record{Kind: KindRequest})
	s.Write(Record{Kind: KindRequest})
	s.Close()
	assert.Equal(t, uint64(2), s.Dropped())
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

type blockingWriter struct{ release chan struct{} }

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func countLines(s string) int {
	n := 0
	for _, c := range s {
		if c == '\n' {
			n++
		}
	}
	return n
}
