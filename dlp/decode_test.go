package dlp

import (
	"bytes"
	"math/rand/v2"
	"net/url"
	"testing"
)

// percentDecode unescapes each run as url.QueryUnescape does, without
// allocating a string per run.
func TestPercentDecodeAgreesWithQueryUnescape(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "%%%+aF09zZ&= \"/x"
	for range 5000 {
		buf := make([]byte, r.IntN(40))
		for i := range buf {
			buf[i] = alphabet[r.IntN(len(alphabet))]
		}
		got := percentDecode(buf)

		var want []byte
		decoded := false
		for i := 0; i < len(buf); {
			j := i
			for j < len(buf) && !urlDelim(buf[j]) {
				j++
			}
			run := buf[i:j]
			if p := bytes.LastIndexByte(run, '%'); j == len(buf) && p >= 0 && p > len(run)-3 {
				run = run[:p]
			}
			if dec, err := url.QueryUnescape(string(run)); err == nil && bytes.IndexByte(buf[i:j], '%') >= 0 {
				want, decoded = append(want, dec...), true
			} else {
				want = append(want, buf[i:j]...)
			}
			if j < len(buf) {
				want = append(want, buf[j])
			}
			i = j + 1
		}
		if !decoded {
			want = nil
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("percentDecode(%q) = %q, want %q", buf, got, want)
		}
	}
}
