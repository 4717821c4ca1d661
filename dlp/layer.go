package dlp

// scanState carries one top-level scan through its decoded layers.
type scanState struct {
	s   *Scanner
	out *findingSet
	// budget is how many decoded bytes may still be scanned. Each layer's
	// output is at most its input, but three decoders over maxDepth layers
	// could multiply the work; eight times the input keeps the cost linear.
	// Most bodies decode a small part of themselves; eight, not fewer, so
	// that in one dense with nested encodings, where every layer decodes
	// about all of its input, the third level still has its turn.
	budget int
}

// scan scans buf and then, breadth first, the decodings of its spans that
// look encoded: every decoding one level down gets its share of the budget
// before any two levels down does, and a secret is reported with its
// shallowest encoding.
func (s *Scanner) scan(buf []byte, out *findingSet, carried bool) {
	st := &scanState{s: s, out: out, budget: 8 * len(buf)}
	queue := []layerBuf{{buf: buf, cut: carried}}
	for len(queue) > 0 {
		l := queue[0]
		queue = st.layer(l, queue[1:])
	}
}

// layerBuf is a buffer to scan: the body, or a decoding of part of one.
type layerBuf struct {
	buf   []byte
	enc   string // the encodings it was wrapped in, outermost first; "" for the body
	depth int
	// cut says buf starts in the middle of the text it was taken from (a
	// stream's carried tail, a decoded region).
	cut bool
}

// span is buf[start:end] of the buffer it was found in.
type span struct{ start, end int }

// layer scans l.buf, then queues the decodings of the spans of it where a
// decoding can show something l.buf does not: JSON escapes that decode to a
// token's bytes, percent-encoded runs, base64 runs.
//
// Only those spans are decoded, not all of the buffer: everything else
// decodes to the same bytes and is scanned here already. That is what keeps
// a JSON body, whose every string has escaped line breaks and quotes, from
// being scanned once per layer; the rules read such escapes in place
// instead (prevByte, afterEscape).
func (st *scanState) layer(l layerBuf, queue []layerBuf) []layerBuf {
	label := func(inner string) string {
		switch {
		case l.enc == "":
			return inner
		case inner == encodingPlain:
			return l.enc
		}
		return l.enc + "+" + inner
	}
	s, buf := st.s, l.buf
	var runs []span
	s.m.find(buf, func(id, start int) {
		p := &s.pats[id]
		if p.rule == nil {
			f := p.finding
			f.Encoding = label(f.Encoding)
			st.out.add(f)
			return
		}
		p.rule.check(buf, start, start+len(s.m.texts[id]), func(kind string, sev Severity, tok []byte) {
			st.out.add(Finding{Kind: kind, Encoding: label(encodingPlain), Fingerprint: Fingerprint(tok), Severity: sev})
		})
	}, func(start, end int) { runs = append(runs, span{start, end}) })
	hits := s.prefixHits(buf)
	for i, r := range s.regexes {
		if r.prefix != "" && len(hits[i]) == 0 {
			continue // no match can start anywhere
		}
		for _, loc := range r.re.FindAllIndex(buf, -1) {
			st.out.add(Finding{Kind: KindPattern, Name: r.name, Encoding: label(encodingPlain),
				Fingerprint: Fingerprint(buf[loc[0]:loc[1]]), Severity: r.sev})
		}
	}
	if l.depth >= maxDepth {
		return queue
	}
	push := func(dec []byte, enc string, cut bool) {
		if len(dec) == 0 || len(dec) > st.budget {
			return
		}
		st.budget -= len(dec)
		queue = append(queue, layerBuf{buf: dec, enc: label(enc), depth: l.depth + 1, cut: cut})
	}
	// A region cuts a base64 run if one goes on before it.
	cut := func(r span) bool { return r.start == 0 && l.cut || r.start > 0 && base64Chars[buf[r.start-1]] }
	for _, r := range s.jsonRegions(buf, hits) {
		push(jsonUnescape(buf[r.start:r.end]), "json", cut(r))
	}
	for _, r := range s.percentRegions(buf, hits) {
		push(percentDecode(buf[r.start:r.end]), "url", cut(r))
	}
	dec, raw := base64Decode(buf, runs, l.cut)
	push(keepText(dec, s.minText), "base64", false)
	push(keepText(raw, s.minText), "base64", false)
	return queue
}
