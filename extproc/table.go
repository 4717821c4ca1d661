package extproc

import "github.com/egressgate/egressgate/config"

// slotTable maps slot name to slot. A table is never mutated after it is
// published, so readers need no lock; SetSlots publishes a fresh one.
type slotTable map[string]config.Slot

// SetSlots replaces the slot table. The swap is atomic: a request looks the
// table up once and sees either the whole old table or the whole new one.
// Slot names are unique in a Policy; should one repeat, the last wins.
func (s *Server) SetSlots(slots []config.Slot) {
	t := make(slotTable, len(slots))
	for _, sl := range slots {
		t[sl.Name] = sl
	}
	s.slots.Store(&t)
}

// lookup finds a slot in the current table. Before the first SetSlots the
// table is empty, so every credentialed route is refused (fail closed).
func (s *Server) lookup(name string) (config.Slot, bool) {
	t := s.slots.Load()
	if t == nil {
		return config.Slot{}, false
	}
	sl, ok := (*t)[name]
	return sl, ok
}
