package dlp_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// codexBody is a 64 KiB JSON request shaped like a Codex turn: instructions,
// a conversation with code and tool output (JSON-escaped newlines and
// quotes), and tool definitions; no secrets.
func codexBody(tb testing.TB) []byte {
	g := newGen(8)
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var input []msg
	req := map[string]any{"model": "gpt-5-codex", "instructions": strings.Repeat("You are a coding agent. Follow the repository's style. ", 20), "stream": true}
	for i := 0; ; i++ {
		code := fmt.Sprintf("func handler%d(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query().Get(\"id\")\n\tlog.Printf(\"request %%s id=%s\", r.URL.Path, id)\n\tfmt.Fprintf(w, \"ok\\n\")\n}\n", i, g.chars(8, lower))
		input = append(input,
			msg{"user", "Please refactor handler " + fmt.Sprint(i) + " and run the tests."},
			msg{"assistant", "```go\n" + code + "```"},
			msg{"tool", "$ go test ./...\nok  \tgithub.com/acme/app/" + g.chars(6, lower) + "\t0.0" + g.chars(2, digits) + "s\n"})
		req["input"] = input
		b, err := json.Marshal(req)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) >= 64<<10 {
			return b[:64<<10]
		}
	}
}

// BenchmarkScan64KiB compares scanning a Codex-sized body (ten known secrets
// and two canaries configured, as in newFixture) with copying it, the floor
// for touching every byte once.
func BenchmarkScan64KiB(b *testing.B) {
	f := newFixture(b)
	body := codexBody(b)
	if got := f.s.Scan(body); len(got) > 0 {
		b.Fatalf("benchmark body has findings: %s", describe(got))
	}
	b.Run("copy", func(b *testing.B) {
		dst := make([]byte, len(body))
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			copy(dst, body)
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			f.s.Scan(body)
		}
	})
	b.Run("stream-16KiB-chunks", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			st := f.s.NewStream()
			for c := body; len(c) > 0; c = c[min(16<<10, len(c)):] {
				_, _ = st.Write(c[:min(16<<10, len(c))])
			}
			_, _ = st.Close()
		}
	})
	b.Run("gzip", func(b *testing.B) {
		gz := gzipped(b, body)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.s.ScanEncoded(gz, "gzip"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
