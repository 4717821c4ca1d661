package audit

import (
	"bufio"
	"encoding/json"
	"io"
)

// Filter says which records Tail keeps.
type Filter struct {
	// Bottle, when set, keeps that bottle's records only.
	Bottle string
	// All keeps every record; otherwise only refusals (refused and
	// failed closed), which is what a person looks for first.
	All bool
}

func (f Filter) keep(r Record) bool {
	if f.Bottle != "" && r.Bottle != f.Bottle {
		return false
	}
	return f.All || r.Decision == Refused || r.Decision == FailedClosed
}

// Tail reads an audit log and returns the last n records f keeps, oldest
// first. Lines that are not records (a line cut short by a crash) are
// skipped and counted in bad.
func Tail(r io.Reader, f Filter, n int) (records []Record, bad int, err error) {
	ring := make([]Record, 0, n)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec Record
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			bad++
			continue
		}
		if !f.keep(rec) {
			continue
		}
		if len(ring) == n && n > 0 {
			copy(ring, ring[1:])
			ring = ring[:n-1]
		}
		if n > 0 {
			ring = append(ring, rec)
		}
	}
	return ring, bad, sc.Err()
}
