package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	line, err := json.Marshal(Record{Kind: KindRequest})
	require.NoError(t, err)
	// Held at most: the queue, and the batch the stuck write is holding.
	held := queueSize + maxBatch/(len(line)+1) + 1
	const extra = 100
	done := make(chan struct{})
	go func() {
		for range held + extra {
			s.Write(Record{Kind: KindRequest})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked behind a stuck writer")
	}
	assert.GreaterOrEqual(t, s.Dropped(), uint64(extra))
	close(stuck.release)
	s.Close()
}

// TestSinkBatchesWrites: records queued together reach the file in one
// write, and every one of them arrives.
func TestSinkBatchesWrites(t *testing.T) {
	slow := &blockingWriter{release: make(chan struct{})}
	s := NewSink(context.Background(), Options{Stdout: slow})
	s.Write(Record{Kind: KindRequest, Path: "/first"})
	for i := range 50 {
		s.Write(Record{Kind: KindRequest, Path: fmt.Sprintf("/%d", i)})
	}
	close(slow.release)
	s.Close()
	assert.Equal(t, 51, countLines(slow.String()))
	assert.LessOrEqual(t, slow.Writes(), 2, "the 50 queued behind the first write went in one")
	assert.Zero(t, s.Dropped())
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

// blockingWriter holds every write until release is closed, and keeps
// what it was given.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	got     []byte
	writes  int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, p...)
	w.writes++
	return len(p), nil
}

func (w *blockingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.got)
}

func (w *blockingWriter) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
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
