package extproc

import (
	"crypto/sha256"
	"time"

	"github.com/egressgate/egressgate/config"
)

// slotEntry is one slot as ext_proc holds it: the slot, a fingerprint of
// its value and since when it has held that value. The fingerprint lets a
// rejection (see rejected.go) stick to the value the upstream refused and
// fall away when the host's credential changes; since tells an old
// request's answer from one about the current value.
type slotEntry struct {
	slot  config.Slot
	print fingerprint
	since time.Time
}

// fingerprint identifies a credential value without holding it.
type fingerprint [sha256.Size]byte

func fingerprintOf(s config.Secret) fingerprint { return sha256.Sum256([]byte(s.Reveal())) }

// slotTable maps slot name to entry. A table is never mutated after it is
// published, so readers need no lock; SetSlots publishes a fresh one.
type slotTable map[string]slotEntry

// SetSlots replaces the slot table. The swap is atomic: a request looks the
// table up once and sees either the whole old table or the whole new one.
// Slot names are unique in a Policy; should one repeat, the last wins.
func (s *Server) SetSlots(slots []config.Slot) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	old := s.slots.Load()
	now := s.now()
	t := make(slotTable, len(slots))
	for _, sl := range slots {
		e := slotEntry{slot: sl, print: fingerprintOf(sl.Value), since: now}
		if prev, ok := lookupIn(old, sl.Name); ok && prev.print == e.print && prev.slot.Source == sl.Source {
			e.since = prev.since
		}
		t[sl.Name] = e
	}
	s.slots.Store(&t)
	// The slot values are the scanner's known secrets.
	s.rebuildScanner()
}

// lookup finds a slot in the current table. Before the first SetSlots the
// table is empty, so every credentialed route is refused (fail closed).
func (s *Server) lookup(name string) (slotEntry, bool) { return lookupIn(s.slots.Load(), name) }

func lookupIn(t *slotTable, name string) (slotEntry, bool) {
	if t == nil {
		return slotEntry{}, false
	}
	e, ok := (*t)[name]
	return e, ok
}
