package dlp

import (
	"bufio"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var (
	// ErrTooLarge is returned when a compressed body decodes past
	// Config.MaxDecompressed: a decompression bomb, or a body too big to
	// vouch for. Callers should refuse the request (fail closed).
	ErrTooLarge = errors.New("dlp: decompressed body too large")
	// ErrUnsupportedEncoding is returned for a Content-Encoding the scanner
	// cannot decode (including stacked codings such as "gzip, br"); a body
	// it cannot read is a body it cannot vouch for.
	ErrUnsupportedEncoding = errors.New("dlp: unsupported content encoding")
)

// inflateBlock is how much decompressed data is scanned at a time.
const inflateBlock = 32 << 10

// Stream scans a body that arrives in chunks, as ext_proc streams it, and
// finds secrets split across chunk boundaries. It keeps the last
// Scanner.Window() bytes of what it has scanned and scans them again with the
// next chunk, so its buffer is at most Window() plus one chunk (plus, for a
// compressed body, the decompressor's state and a 32 KiB block). A Stream is
// not safe for concurrent use. Close must be called: a compressed stream
// runs its decompressor on a goroutine that Close ends.
type Stream struct {
	s       *Scanner
	label   string // the content encoding, or "" for a plain body
	buf     []byte // carried tail, then the chunk being scanned
	carried int
	set     findingSet

	// Set for a compressed body: chunks go to the decompressor goroutine,
	// which scans what it decodes through the fields above.
	in   chan []byte
	idle chan struct{}
	done chan struct{}
	derr error // the goroutine's result, read after done is closed
	err  error
}

// NewStream returns a Stream for an uncompressed body.
func (s *Scanner) NewStream() *Stream { return &Stream{s: s} }

// NewEncodedStream returns a Stream for a body with the given
// Content-Encoding, which it decodes as the chunks arrive, up to
// Config.MaxDecompressed decoded bytes.
func (s *Scanner) NewEncodedStream(contentEncoding string) (*Stream, error) {
	var open func(io.Reader) (io.Reader, error)
	ce := strings.ToLower(strings.TrimSpace(contentEncoding))
	switch ce {
	case "", "identity":
		return s.NewStream(), nil
	case "gzip", "x-gzip":
		ce = "gzip"
		open = openGzip
	case "deflate": // HTTP's "deflate" is the zlib format (RFC 9110, 8.4.1.2)
		open = func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }
	case "br":
		open = func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }
	case "zstd":
		// Codex compresses its requests with zstd. One goroutine, low
		// memory, and a window no larger than the decoded limit: a body
		// must not make the scanner allocate what it would refuse.
		open = func(r io.Reader) (io.Reader, error) {
			d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(uint64(min(s.maxDecompressed, zstd.MaxWindowSize))))
			if err != nil {
				return nil, err
			}
			return d.IOReadCloser(), nil
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnsupportedEncoding, contentEncoding)
	}
	st := &Stream{s: s, label: ce, in: make(chan []byte), idle: make(chan struct{}), done: make(chan struct{})}
	go st.inflate(open)
	return st, nil
}

// Write scans the next chunk. It returns an error, and scans nothing more,
// once a compressed body is corrupt or too large; findings so far remain
// available from Findings. It implements io.Writer.
func (st *Stream) Write(p []byte) (int, error) {
	if st.err != nil {
		return 0, st.err
	}
	if st.in == nil {
		st.scanChunk(p)
		return len(p), nil
	}
	// Hand the chunk to the decompressor, then wait until it asks for more
	// input or stops. By then it has consumed the chunk and everything it
	// released has been scanned, so Findings after Write is deterministic,
	// with no polling. (A decompressor may hold decoded bytes back until
	// more input arrives, deflate inside a block for instance; those are
	// scanned on a later Write, or at Close.)
	select {
	case st.in <- p:
	case <-st.done:
		return 0, st.finish()
	}
	select {
	case <-st.idle:
		return len(p), nil
	case <-st.done:
		return len(p), st.finish()
	}
}

// Findings returns what has been found so far, at most one finding per
// distinct secret, in the order first seen. Call it between Writes to act
// before the whole body has arrived.
func (st *Stream) Findings() []Finding { return st.set.list }

// Close ends the body and returns every finding, and an error if a
// compressed body was truncated, corrupt or too large.
func (st *Stream) Close() ([]Finding, error) {
	if st.in != nil && st.err == nil {
		close(st.in)
		<-st.done
		st.err = st.finish()
	}
	return st.set.list, st.err
}

func (st *Stream) finish() error {
	if st.err == nil {
		st.err = st.derr
	}
	return st.err
}

// scanChunk scans the carried tail and p together, then keeps the last
// Window() bytes as the next tail. A secret found again in the tail is
// dropped by the finding set.
func (st *Stream) scanChunk(p []byte) {
	st.buf = append(st.buf[:st.carried], p...)
	var scratch findingSet
	st.s.scan(st.buf, &scratch, st.carried > 0)
	for _, f := range scratch.list {
		st.set.add(relabel(f, st.label))
	}
	keep := min(len(st.buf), st.s.window)
	st.carried = copy(st.buf, st.buf[len(st.buf)-keep:])
}

// relabel puts the content encoding outermost in a finding's encoding.
func relabel(f Finding, contentEncoding string) Finding {
	switch {
	case contentEncoding == "":
	case f.Encoding == encodingPlain:
		f.Encoding = contentEncoding
	default:
		f.Encoding = contentEncoding + "+" + f.Encoding
	}
	return f
}

// inflate runs on its own goroutine for a compressed body: it decodes what
// Write hands over and scans it in blocks, stopping with ErrTooLarge one byte
// past the limit, so a bomb costs at most the limit in work and a block in
// memory.
func (st *Stream) inflate(open func(io.Reader) (io.Reader, error)) {
	defer close(st.done)
	zr, err := open(&chanReader{in: st.in, idle: st.idle})
	if errors.Is(err, io.EOF) {
		return // an empty body
	}
	if err != nil {
		st.derr = fmt.Errorf("dlp: %s body: %w", st.label, err)
		return
	}
	if c, ok := zr.(io.Closer); ok {
		defer c.Close()
	}
	block := make([]byte, inflateBlock)
	var total int64
	for {
		// One Read at a time, not io.ReadFull: the decompressors return what
		// they have before asking for more input, so when chanReader reports
		// idle, everything decodable so far has been scanned.
		n, err := zr.Read(block)
		total += int64(n)
		if total > st.s.maxDecompressed {
			st.derr = fmt.Errorf("%w: %s body decodes past %d bytes", ErrTooLarge, st.label, st.s.maxDecompressed)
			return
		}
		if n > 0 {
			st.scanChunk(block[:n])
		}
		switch {
		case err == io.EOF:
			return
		case err != nil:
			st.derr = fmt.Errorf("dlp: %s body: %w", st.label, err)
			return
		}
	}
}

// gzipMembers reads a gzip body member by member. gzip.Reader's own
// multistream mode reads the next member's header before it returns the last
// bytes of the current one, so on a stream those bytes (and any secret in
// them) would wait for input that may never come; here a member's end is
// returned first and the next header looked for on the following Read.
type gzipMembers struct {
	br *bufio.Reader
	z  *gzip.Reader
}

func openGzip(r io.Reader) (io.Reader, error) {
	// One bufio.Reader for every member: gzip.Reader uses a ByteReader as
	// it is, so bytes read ahead of one member stay there for the next.
	br := bufio.NewReader(r)
	z, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	z.Multistream(false)
	return &gzipMembers{br: br, z: z}, nil
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.z.Read(p)
		if err != io.EOF {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		if err := g.z.Reset(g.br); err != nil {
			return 0, err // io.EOF when no member follows: the body's end
		}
		g.z.Multistream(false)
	}
}

// chanReader feeds the decompressor the chunks Write sends. Each time it has
// used up a chunk and needs another, it first tells Write (idle) that the
// chunk is done with.
type chanReader struct {
	in      <-chan []byte
	idle    chan<- struct{}
	cur     []byte
	started bool
}

func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.started {
			r.idle <- struct{}{}
		}
		r.started = true
		c, ok := <-r.in
		if !ok {
			return 0, io.EOF
		}
		r.cur = c
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
