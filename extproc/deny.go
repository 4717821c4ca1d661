package extproc

import (
	"fmt"
	"time"

	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/egressgate/egressgate/config"
)

// Reason codes, sent as ImmediateResponse.details (Envoy response code
// details) and logged. Agents see the body; operators grep these.
const (
	codeMissing       = "egressgate_credential_missing"
	codeEmpty         = "egressgate_credential_empty"
	codeExpired       = "egressgate_credential_expired"
	codeInvalid       = "egressgate_credential_invalid"
	codeMisconfigured = "egressgate_route_misconfigured"
	codeMoved         = "egressgate_credential_reloading"
)

// denial is why a request is refused. Bodies are read by agents, so they
// say what is wrong and what a person must do on the host; they are built
// only from names, sources and times, never from a slot's value.
type denial struct {
	status typev3.StatusCode
	code   string
	body   string
}

// slotMissing: the route names a slot the current policy does not hold.
// That is a translation/reload skew, not a credential problem.
func slotMissing(b binding) *denial {
	return unavailable(codeMissing, fmt.Sprintf(
		"egressgate: no credential for %s: %s is not in egressgate's current policy; "+
			"check `egressgate status` on the host", b.label(), b.slot))
}

// slotMoved: the slot now holds another source's credential. Envoy has not
// yet received the routes of the policy that renumbered the slots; the next
// attempt, a moment later, is routed afresh.
func slotMoved(b binding, s config.Slot) *denial {
	return unavailable(codeMoved, fmt.Sprintf(
		"egressgate: no credential for %s: %s now holds %s, not %s, while egressgate reloads; retry",
		b.label(), s.Name, s.Source, b.source))
}

func slotEmpty(b binding, s config.Slot) *denial {
	return unavailable(codeEmpty, fmt.Sprintf(
		"egressgate: no credential for %s: %s (%s) is empty; %s",
		b.label(), s.Name, s.Source, s.Source.Fix()))
}

func slotExpired(b binding, s config.Slot) *denial {
	return unavailable(codeExpired, fmt.Sprintf(
		"egressgate: no credential for %s: %s (%s) expired at %s; %s",
		b.label(), s.Name, s.Source, s.Expiry.UTC().Format(time.RFC3339), s.Source.Fix()))
}

func slotInvalid(b binding, s config.Slot) *denial {
	return unavailable(codeInvalid, fmt.Sprintf(
		"egressgate: no credential for %s: %s (%s) holds a value that cannot be sent in a header; %s",
		b.label(), s.Name, s.Source, s.Source.Fix()))
}

// misconfigured is a 500: the route binding Envoy sent is unusable, which
// is our bug, not the credential's. err names metadata keys and the scheme,
// never a value.
func misconfigured(b binding, err error) *denial {
	return &denial{
		status: typev3.StatusCode_InternalServerError,
		code:   codeMisconfigured,
		body: fmt.Sprintf("egressgate: route for %s is misconfigured: %v; "+
			"check egressgate's log on the host\n", b.label(), err),
	}
}

func unavailable(code, body string) *denial {
	return &denial{status: typev3.StatusCode_ServiceUnavailable, code: code, body: body + "\n"}
}
