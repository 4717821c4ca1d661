package extproc

import (
	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
)

// dlpInputs are what the bottle's scanner is built from besides its slot
// values: the manifest's rules and the canaries agent-env planted.
type dlpInputs struct {
	rules    config.DLPRules
	canaries []dlp.Named
}

// SetDLPRules replaces the bottle's extra detection rules and allowed
// fingerprints (config.Policy.DLPRules) and rebuilds the scanner.
func (s *Server) SetDLPRules(r config.DLPRules) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	s.dlpIn.rules = r
	s.rebuildScanner()
}

// SetCanaries replaces the canaries planted in the bottle's agent
// environment (package canary) and rebuilds the scanner.
func (s *Server) SetCanaries(c []dlp.Named) {
	s.setSlots.Lock()
	defer s.setSlots.Unlock()
	s.dlpIn.canaries = c
	s.rebuildScanner()
}

// rebuildScanner builds the scanner from the current slots, rules and
// canaries; s.setSlots is held. A value the scanner refuses (a slot value
// shorter than dlp.MinLiteralLen) is left out rather than leaving the bottle
// with no scanner; config validates patterns before they get here.
func (s *Server) rebuildScanner() {
	// Filled in with the body processing.
}
