package dlp_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
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
		code := fmt.Sprintf("func handler%d(w http.ResponseWriter, r *http.Request) {\n\tid := r.URL.Query().Get(\"id\")\n\tlog.Printf(\"request %%s id=%s\", r.URL.Path, id)\n\tfmt.Fprintf(w, \"ok\\n\")\n}\n", i, g.Chars(8, lower))
		input = append(input,
			msg{"user", "Please refactor handler " + fmt.Sprint(i) + " and run the tests."},
			msg{"assistant", "```go\n" + code + "```"},
			msg{"tool", "$ go test ./...\nok  \tgithub.com/acme/app/" + g.Chars(6, lower) + "\t0.0" + g.Chars(2, digits) + "s\n"})
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

// The bodies below are the other kinds an agent sends, 64 KiB each and with
// no secrets, so the cost of each is known: a screenshot as a base64 PNG data
// URI, a minified script read by a tool (JSON-escaped, so full of \" and
// \\), and prose with few escapes.

func chatBody(tb testing.TB, content string) []byte {
	b, err := json.Marshal(map[string]any{"model": "gpt-5-codex", "stream": true,
		"input": []map[string]string{{"role": "user", "content": content}}})
	if err != nil {
		tb.Fatal(err)
	}
	return cut64KiB(tb, b)
}

func cut64KiB(tb testing.TB, b []byte) []byte {
	if len(b) < 64<<10 {
		tb.Fatalf("body is %d bytes, short of 64 KiB", len(b))
	}
	return b[:64<<10]
}

// pngBody is a JSON request carrying a noisy (incompressible) PNG as a data
// URI, as a screenshot tool would send it.
func pngBody(tb testing.TB) []byte {
	g := newGen(9)
	img := image.NewRGBA(image.Rect(0, 0, 128, 128))
	for i, c := range g.Bytes(len(img.Pix)) {
		img.Pix[i] = c
	}
	img.Set(0, 0, color.RGBA{A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"model": "gpt-5-codex", "input": []map[string]any{{"role": "user",
		"content": []map[string]string{{"type": "input_image", "image_url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	return cut64KiB(tb, b)
}

// jsBody is a minified script returned by a tool, inside a JSON request.
func jsBody(tb testing.TB) []byte {
	g := newGen(10)
	var js strings.Builder
	js.WriteString(`!function(e,t){"use strict";`)
	for i := 0; js.Len() < 80<<10; i++ {
		a, b, c := g.Chars(1, lower), g.Chars(2, lower), g.Chars(1, lower)
		fmt.Fprintf(&js, `var %s%d=function(%s,%s){if(!%s)return null;var n=%s.split(/\s+/g),r=[];for(var o=0;o<n.length;o++)r.push(n[o].replace(/[^a-z0-9\-_]/gi,""));return r.join("-")+"%s"};`,
			b, i, a, c, a, a, g.Chars(6, lower))
		fmt.Fprintf(&js, `e.exports.%s%d={name:"%s",version:"1.%d.%s",url:"https://cdn.example.com/%s/%s.min.js",deps:["%s","%s"]};`,
			b, i, g.Chars(8, lower), i%10, g.Chars(1, digits), g.Chars(5, lower), g.Chars(7, lower), g.Chars(4, lower), g.Chars(6, lower))
	}
	js.WriteString(`}(window,document);`)
	return chatBody(tb, js.String())
}

// proseBody is English prose: paragraphs of ordinary words.
func proseBody(tb testing.TB) []byte {
	g := newGen(11)
	words := strings.Fields(`the a of to and in is it that for on with as was be by this are or from at an
		which not have has had but were their they can will one all there when would more been if no out
		so what up its about into than them only other new some could time these two may then first any
		like now such over our most even made after also did many before must through back years where
		much your way well down should because each just those people how too little state good very make
		world still own see men work long get here between both life being under never day same another
		know while last might us great old year off come since against go came right used take three
		request handler service deploy build test review change branch commit merge release config
		network proxy policy secret token agent model output input refactor function package module`)
	var p strings.Builder
	for p.Len() < 80<<10 {
		for range 3 + g.IntN(5) {
			n := 6 + g.IntN(14)
			for i := range n {
				w := words[g.IntN(len(words))]
				if i == 0 {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
				p.WriteString(w)
				switch {
				case i == n-1:
					p.WriteString(". ")
				case g.IntN(9) == 0:
					p.WriteString(", ")
				default:
					p.WriteString(" ")
				}
			}
		}
		p.WriteString("\n\n")
	}
	return chatBody(tb, p.String())
}

// BenchmarkScanBodies scans each kind of 64 KiB body with the fixture's
// scanner.
func BenchmarkScanBodies(b *testing.B) {
	f := newFixture(b)
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"codex", codexBody(b)},
		{"png", pngBody(b)},
		{"minified-js", jsBody(b)},
		{"prose", proseBody(b)},
	} {
		if got := f.s.Scan(c.body); len(got) > 0 {
			b.Fatalf("%s body has findings: %s", c.name, describe(got))
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				f.s.Scan(c.body)
			}
		})
	}
}

// BenchmarkScanDense scans 64 KiB bodies made to decode as much as possible:
// every character \u-escaped or percent-encoded, base64 three times over,
// escapes within escapes. Their cost is bounded by the decoding budget, and
// must stay linear: none of the searches for escapes, regions or patterns
// may go back over a body once per escape or occurrence.
func BenchmarkScanDense(b *testing.B) {
	f := newFixture(b)
	nested := newGen(20).Chars(48<<10, b64std)
	for range 3 {
		nested = base64.StdEncoding.EncodeToString([]byte(nested))
	}
	for _, c := range []struct {
		name string
		body string
	}{
		{"all-u-escaped", strings.Repeat(`\u0041`, (64<<10)/6)},
		{"all-percent", strings.Repeat(`%41`, (64<<10)/3)},
		{"base64x3", nested[:64<<10]},
		{"escaped-escapes", strings.Repeat(`\\\"a\\\\u0041\\/`, (64<<10)/14)},
		{"percent-and-json", strings.Repeat(`%5Cu0041%2F\u0025`, (64<<10)/17)},
		{"regex-prefixes", strings.Repeat(`EGT-\u0041 `, (64<<10)/11)},
	} {
		body := []byte(c.body)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				f.s.Scan(body)
			}
		})
	}
}
