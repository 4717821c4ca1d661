package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// FileName is the audit log's name in the state dir.
const FileName = "audit.log"

// Rotation: the file is rotated at maxSizeMB and maxBackups old files
// are kept (compressed), so the trail of a busy bottle stays bounded.
const (
	maxSizeMB  = 50
	maxBackups = 10
	// queueSize is how many records may wait for the writer. A sink that
	// falls behind drops (and counts) records rather than slow Envoy's
	// access log stream, which would hold up nothing but must not grow
	// without bound either.
	queueSize = 4096
)

// Sink writes records as JSON lines, from a goroutine of its own: Write
// never blocks and never fails. Records it cannot keep (the queue is full,
// the file cannot be written) are counted in Dropped.
type Sink struct {
	log     *slog.Logger
	queue   chan Record
	outs    []io.Writer
	closers []io.Closer
	dropped atomic.Uint64
	done    chan struct{}
	// lastComplaint is when a write failure was last logged (run's).
	lastComplaint time.Time
	stop          sync.Once
}

// Options say where a Sink writes.
type Options struct {
	// File is the audit log's path; "" writes none. It is rotated by size.
	File string
	// Stdout, when set, also receives every record.
	Stdout io.Writer
	Logger *slog.Logger
}

// NewSink starts a sink writing where o says, until ctx ends or Close.
func NewSink(ctx context.Context, o Options) *Sink {
	s := &Sink{log: o.Logger, queue: make(chan Record, queueSize), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.File != "" {
		f := &lumberjack.Logger{Filename: o.File, MaxSize: maxSizeMB, MaxBackups: maxBackups, Compress: true}
		s.outs = append(s.outs, f)
		s.closers = append(s.closers, f)
	}
	if o.Stdout != nil {
		s.outs = append(s.outs, o.Stdout)
	}
	go s.run(ctx)
	return s
}

// Write queues r; it never blocks. A full queue drops r and counts it.
func (s *Sink) Write(r Record) {
	select {
	case s.queue <- r:
	default:
		s.dropped.Add(1)
	}
}

// Dropped is how many records were lost so far.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Close writes what is queued and closes the file.
func (s *Sink) Close() {
	s.stop.Do(func() { close(s.queue) })
	<-s.done
}

// maxBatch bounds the bytes written at once: Envoy sends its entries in
// batches, and one write for a batch costs a syscall, not one per record.
const maxBatch = 256 << 10

func (s *Sink) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		for _, c := range s.closers {
			_ = c.Close()
		}
	}()
	var b batch
	for {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return
			}
			b.add(r)
			open := s.gather(&b)
			s.flush(&b)
			if !open {
				return
			}
		case <-ctx.Done():
			for s.gather(&b) && b.n > 0 {
				s.flush(&b)
			}
			s.flush(&b)
			return
		}
	}
}

// gather adds to b what is already queued, without waiting, up to
// maxBatch; it reports false once the queue is closed.
func (s *Sink) gather(b *batch) bool {
	for len(b.buf) < maxBatch {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return false
			}
			b.add(r)
		default:
			return true
		}
	}
	return true
}

// flush writes b to every output and empties it; records a write loses
// are counted, and said once a minute at most: a full disk must not flood
// the log.
func (s *Sink) flush(b *batch) {
	if b.n == 0 {
		return
	}
	var err error
	for _, w := range s.outs {
		if _, werr := w.Write(b.buf); werr != nil {
			err = werr
		}
	}
	if err != nil {
		s.dropped.Add(uint64(b.n))
		if time.Since(s.lastComplaint) > time.Minute {
			s.lastComplaint = time.Now()
			s.log.Error("cannot write the audit log; records are dropped and counted (egressgate_audit_records_dropped_total)", "error", err)
		}
	}
	b.buf, b.n = b.buf[:0], 0
}

// batch is records encoded as JSON lines, waiting to be written.
type batch struct {
	buf []byte
	n   int
}

func (b *batch) add(r Record) {
	line, err := json.Marshal(r)
	if err != nil {
		return // not reached: a Record has only plain fields
	}
	b.buf = append(append(b.buf, line...), '\n')
	b.n++
}
