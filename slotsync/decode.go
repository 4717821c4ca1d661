package slotsync

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/slotwire"
)

// update is what one secrets response says: the bottle's slots, the
// server certificate if it carries one, and the DLP scanner's inputs
// (empty ones when it carries none).
type update struct {
	slots []config.Slot
	cert  *slotwire.Certificate
	dlp   slotwire.DLPInputs
}

// decodeSlots returns the update of a secrets response, its slots in slot
// order. Secrets of no known name are skipped: the node may be sent other
// secrets. One bad secret rejects the whole response, because the update is
// applied as a whole or not at all. Errors name slots, never values.
func decodeSlots(resp *discoveryv3.DiscoveryResponse) (update, error) {
	var u update
	seen := map[string]bool{}
	for i, a := range resp.GetResources() {
		s := &tlsv3.Secret{}
		if err := a.UnmarshalTo(s); err != nil {
			return update{}, fmt.Errorf("resource %d: %w", i, err)
		}
		if c, ok, err := slotwire.DecodeServerCert(s); ok {
			if err != nil {
				return update{}, err
			}
			u.cert = &c
			continue
		}
		if ok, err := slotwire.DecodeDLPSecret(s, &u.dlp); ok {
			if err != nil {
				return update{}, err
			}
			continue
		}
		if !strings.HasPrefix(s.GetName(), slotwire.SlotSecretPrefix) {
			continue
		}
		sl, err := slotwire.DecodeSlotSecret(s)
		if err != nil {
			return update{}, err
		}
		if seen[sl.Name] {
			return update{}, fmt.Errorf("slot %s sent twice", sl.Name)
		}
		seen[sl.Name] = true
		u.slots = append(u.slots, sl)
	}
	// The server sends resources in no particular order.
	slices.SortFunc(u.slots, bySlotOrder)
	return u, nil
}

// bySlotOrder orders slots by index. Slot names are config.SlotName(i), a
// fixed prefix and a decimal index without leading zeros, so a shorter name
// has a smaller index (EGRESS_TOKEN_9 before EGRESS_TOKEN_10), and names of
// one length sort as text.
func bySlotOrder(a, b config.Slot) int {
	return cmp.Or(cmp.Compare(len(a.Name), len(b.Name)), strings.Compare(a.Name, b.Name))
}

// slotNames describes slots for logs: name, presence and expiry, no value.
func slotNames(slots []config.Slot) []string {
	out := make([]string, len(slots))
	for i, sl := range slots {
		out[i] = sl.String()
	}
	return out
}
