package extproc

import (
	"encoding/binary"
	"errors"

	"github.com/egressgate/egressgate/dlp"
)

// wsScanner reads the frames an agent sends on a WebSocket (RFC 6455, 5.2)
// as Envoy streams them to ext_proc, chunk by chunk and cut anywhere, and
// scans their unmasked payloads as one stream, so a secret split across
// frames or chunks is still found. Client frames are masked: scanning the
// raw bytes would find nothing.
type wsScanner struct {
	stream *dlp.Stream
	seen   int // findings already returned

	head    []byte // a frame header not yet complete
	payload uint64 // payload bytes left in the current frame
	mask    [4]byte
	masked  bool
	maskPos int
	out     []byte
}

// errCompressedFrame: permessage-deflate frames cannot be read here, and
// egressgate removes Sec-WebSocket-Extensions from scanned upgrades so the
// server never agrees to them; a compressed frame means the agent compresses
// without having negotiated it.
var errCompressedFrame = errors.New("compressed WebSocket frame (permessage-deflate is not allowed on scanned routes)")

func newWSScanner(sc *dlp.Scanner) *wsScanner { return &wsScanner{stream: sc.NewStream()} }

// write scans the next chunk of frames and returns the new findings.
func (w *wsScanner) write(p []byte) ([]dlp.Finding, error) {
	w.out = w.out[:0]
	for len(p) > 0 {
		if w.payload == 0 {
			n, done, err := w.readHead(p)
			if err != nil {
				return w.flush(), err
			}
			p = p[n:]
			if !done {
				break
			}
			continue
		}
		n := min(uint64(len(p)), w.payload)
		for _, c := range p[:n] {
			if w.masked {
				c ^= w.mask[w.maskPos&3]
				w.maskPos++
			}
			w.out = append(w.out, c)
		}
		p, w.payload = p[n:], w.payload-n
	}
	return w.flush(), nil
}

func (w *wsScanner) flush() []dlp.Finding {
	if len(w.out) > 0 {
		_, _ = w.stream.Write(w.out) // a plain stream never fails
	}
	all := w.stream.Findings()
	fs := all[w.seen:]
	w.seen = len(all)
	return fs
}

// readHead consumes header bytes from p; done reports a whole header read.
func (w *wsScanner) readHead(p []byte) (n int, done bool, err error) {
	need := 2
	for {
		if len(w.head) >= 2 {
			need = 2 + w.lenBytes()
			if w.head[1]&0x80 != 0 {
				need += 4
			}
		}
		if len(w.head) >= need {
			break
		}
		if n == len(p) {
			return n, false, nil
		}
		w.head = append(w.head, p[n])
		n++
	}
	if w.head[0]&0x40 != 0 {
		return n, false, errCompressedFrame
	}
	switch l := w.head[1] & 0x7f; l {
	case 126:
		w.payload = uint64(binary.BigEndian.Uint16(w.head[2:4]))
	case 127:
		w.payload = binary.BigEndian.Uint64(w.head[2:10])
	default:
		w.payload = uint64(l)
	}
	w.masked = w.head[1]&0x80 != 0
	if w.masked {
		copy(w.mask[:], w.head[need-4:need])
	}
	// Frames are scanned as one stream. A new message (not a continuation
	// frame, opcode 0, whose payload goes on its message's) starts after a
	// boundary, so a token is not glued to the last message's end.
	if w.head[0]&0x0f != 0 {
		w.out = append(w.out, '\n')
	}
	w.maskPos = 0
	w.head = w.head[:0]
	return n, true, nil
}

// lenBytes is how many extended length bytes the header being read has.
func (w *wsScanner) lenBytes() int {
	switch w.head[1] & 0x7f {
	case 126:
		return 2
	case 127:
		return 8
	}
	return 0
}
