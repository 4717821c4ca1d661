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
	codeLoggedOut     = "egressgate_credential_logged_out"
	codeExpired       = "egressgate_credential_expired"
	codeRejected      = "egressgate_credential_rejected"
	codeInvalid       = "egressgate_credential_invalid"
	codeMisconfigured = "egressgate_route_misconfigured"
	codeMoved         = "egressgate_credential_reloading"
)

// denial is why a request is refused. Agents show the reason and the fix
// to a person, so they say what is wrong and what that person must do on
// the host; they are built only from names, kinds and times, never from a
// slot's value or a host path.
type denial struct {
	status typev3.StatusCode
	code   string
	// reason is what is wrong, fix what a person does about it ("" when
	// retrying is all it takes).
	reason string
	fix    string
	// credential marks a refusal about the host credential itself, which
	// a person must act on; retrying cannot help (see render.go).
	credential bool
	// request marks a refusal of what the request carries (DLP), not of
	// the credential: shown to the person like a credential refusal, but
	// not worded by the client as an authentication failure.
	request bool
}

// body is the refusal as one line of text.
func (d *denial) body() string {
	if d.fix == "" {
		return "egressgate: " + d.reason + "\n"
	}
	return "egressgate: " + d.reason + "; " + d.fix + "\n"
}

// slotMissing: the route names a slot the current policy does not hold.
// That is a translation/reload skew, not a credential problem.
func slotMissing(b binding) *denial {
	return &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeMissing,
		reason: fmt.Sprintf("no credential for %s: %s is not in egressgate's current policy", b.label(), b.Slot),
		fix:    "check `egressgate status` on the host"}
}

// slotMoved: the slot now holds another source's credential. Envoy has not
// yet received the routes of the policy that renumbered the slots; the next
// attempt, a moment later, is routed afresh.
func slotMoved(b binding, s config.Slot) *denial {
	return &denial{status: typev3.StatusCode_ServiceUnavailable, code: codeMoved,
		reason: fmt.Sprintf("no credential for %s: %s changed while egressgate reloads", b.label(), s.Name),
		fix:    "retry"}
}

func slotEmpty(b binding, s config.Slot) *denial {
	return credentialDenial(codeEmpty, fmt.Sprintf("no credential for %s: %s (%s) is not set on the host",
		b.label(), s.Source.Describe(), s.Name), s)
}

func slotLoggedOut(b binding, s config.Slot) *denial {
	return credentialDenial(codeLoggedOut, fmt.Sprintf("no credential for %s: %s is gone (%s: logged out, removed or no longer usable)",
		b.label(), s.Source.Describe(), s.Name), s)
}

func slotExpired(b binding, s config.Slot) *denial {
	return credentialDenial(codeExpired, fmt.Sprintf("no credential for %s: %s (%s) expired at %s",
		b.label(), s.Source.Describe(), s.Name, s.Expiry.UTC().Format(time.RFC3339)), s)
}

func slotRejected(b binding, s config.Slot, r Rejection) *denial {
	return credentialDenial(codeRejected, fmt.Sprintf("%s rejected %s (%s) with %d at %s, so egressgate stopped sending it",
		r.Host, s.Source.Describe(), s.Name, r.Status, r.At.UTC().Format(time.RFC3339)), s)
}

func slotInvalid(b binding, s config.Slot) *denial {
	return credentialDenial(codeInvalid, fmt.Sprintf("no credential for %s: %s (%s) holds a value that cannot be sent in a header",
		b.label(), s.Source.Describe(), s.Name), s)
}

func credentialDenial(code, reason string, s config.Slot) *denial {
	return &denial{status: typev3.StatusCode_ServiceUnavailable, code: code, reason: reason, fix: s.Source.AgentFix(), credential: true}
}

// misconfigured is a 500: the route binding Envoy sent is unusable, which
// is our bug, not the credential's. err names metadata keys and the scheme,
// never a value.
func misconfigured(b binding, err error) *denial {
	return &denial{
		status: typev3.StatusCode_InternalServerError,
		code:   codeMisconfigured,
		reason: fmt.Sprintf("route for %s is misconfigured: %v", b.label(), err),
		fix:    "check egressgate's log on the host",
	}
}
