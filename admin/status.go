// Package admin is egressgate's operator surface: the live status model
// that /status serves and `egressgate status` prints, the Prometheus
// metrics, and the small HTTP server behind --admin. Nothing here may carry
// a credential (invariant 4), so every type is built from names, sources,
// times and the redacted forms config already produces.
package admin

import (
	"fmt"
	"strings"
	"time"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/hostlogin"
)

// Modes a process reports in Status.Mode.
const (
	ModeServe   = "serve"
	ModeControl = "control"
	ModeExtProc = "extproc"
)

// Status is what /status serves and `egressgate status` prints. It holds no
// secret by construction: build it only from names, sources, times and
// redacted forms.
type Status struct {
	Mode string `json:"mode"` // "serve" | "control" | "extproc"
	// Version is the egressgate build serving this status.
	Version string `json:"version,omitempty"`
	// CA is the bottle CA agents trust; nil in extproc mode, which has none.
	CA      *CAStatus      `json:"ca,omitempty"`
	Bottles []BottleStatus `json:"bottles"`
}

// CAStatus is the bottle CA as an operator needs it: where agents find it
// and when it stops being worth trusting.
type CAStatus struct {
	Path     string    `json:"path"`
	NotAfter time.Time `json:"not_after"`
}

// BottleStatus is the live state of one bottle (one Envoy node).
type BottleStatus struct {
	Name     string `json:"name"`
	Manifest string `json:"manifest,omitempty"`
	// ConfigVersion is the snapshot version being served.
	ConfigVersion string `json:"config_version"`
	// AckedVersion is the version Envoy has ACKed; "" means none yet.
	AckedVersion   string `json:"acked_version,omitempty"`
	EnvoyConnected bool   `json:"envoy_connected"`
	// LastReload is when the last reload was attempted, successful or not.
	// omitzero, not omitempty: encoding/json never treats a struct as empty.
	LastReload time.Time `json:"last_reload,omitzero"`
	// LastReloadError is the failed reload's error, e.g.
	// "bottle.md:7: egress.routes[0].tls: ...", or "" when the last reload
	// succeeded. A failed reload keeps the previous config serving, so this
	// can be set while ConfigVersion is still healthy.
	LastReloadError string `json:"last_reload_error,omitempty"`
	// LeafRenewal is when the first of the bottle's leaf certificates is
	// renewed; they are renewed on a timer, with or without reloads.
	LeafRenewal time.Time     `json:"leaf_renewal,omitzero"`
	Routes      []RouteStatus `json:"routes"`
	Slots       []SlotStatus  `json:"slots"`
}

// RouteStatus is one route as an operator reads it.
type RouteStatus struct {
	Host string `json:"host"`
	TLS  string `json:"tls"`
	// Auth is "Bearer EGRESS_TOKEN_0", "x-api-key: EGRESS_TOKEN_1" for a
	// credential in a header of its own, or "" for a route that injects
	// nothing.
	Auth string `json:"auth,omitempty"`
	// Allow is "all", "tunnel", or the method and path rules, e.g.
	// "GET,HEAD /repos/* /user".
	Allow string `json:"allow"`
	// Upstream is where Envoy connects, "host:port" plus " ca=FILE" when the
	// route trusts its own CA.
	Upstream string `json:"upstream"`
	// DLP is the route's outbound secret detection: "off", or the mode
	// with large_body and max_body_bytes where they are not the defaults,
	// e.g. "block large_body=pass max_body_bytes=1048576".
	DLP string `json:"dlp"`
}

// SlotStatus is one credential slot without its value.
type SlotStatus struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Present bool   `json:"present"`
	// State is whether the slot's credential is sent: SlotOK, or why not.
	State string `json:"state"`
	// Detail says why a slot is not SlotOK, with the fix. It is for the
	// host's operator and may name host paths.
	Detail string `json:"detail,omitempty"`
	// Expiry is nil when the source gives no expiry (an env var).
	Expiry *time.Time `json:"expiry,omitempty"`
	// Display is config.Slot.String(), e.g. "<redacted:EGRESS_TOKEN_0 exp=...>".
	Display string `json:"display"`
	// Refresh is the host login refresher's state, when it is on.
	Refresh *hostlogin.State `json:"refresh,omitempty"`
}

// Slot states: whether egressgate sends the slot's credential, or why not.
const (
	SlotOK        = "ok"
	SlotEmpty     = "empty"      // never set: an unset variable, a missing token file
	SlotLoggedOut = "logged_out" // a host login that went away or became unusable
	SlotExpired   = "expired"
	SlotRejected  = "rejected" // the upstream refused the value (401)
)

// SlotFacts are what egressgate learned about a slot at run time, beyond
// its policy.
type SlotFacts struct {
	// Rejected is the upstream's refusal of the slot's current value.
	Rejected *Rejected
	// Refresh is the host login refresher's state.
	Refresh *hostlogin.State
}

// Rejected is an upstream refusing a slot's value.
type Rejected struct {
	Host   string
	Status int
	At     time.Time
}

// SlotState is the state of s at now, and the detail an operator needs.
func SlotState(s config.Slot, f SlotFacts, now time.Time) (state, detail string) {
	switch {
	case s.LoggedOut():
		return SlotLoggedOut, s.Problem
	case !s.Present():
		return SlotEmpty, s.Source.Fix()
	case s.Expired(now):
		return SlotExpired, "expired at " + s.Expiry.UTC().Format(time.RFC3339) + "; " + s.Source.Fix()
	case f.Rejected != nil:
		return SlotRejected, fmt.Sprintf("%s answered %d to it at %s; %s",
			f.Rejected.Host, f.Rejected.Status, f.Rejected.At.UTC().Format(time.RFC3339), s.Source.Fix())
	}
	return SlotOK, ""
}

// SlotStatuses describes slots at now. It reads a slot's value only
// through Present, so the result cannot hold the credential.
func SlotStatuses(slots []config.Slot, facts map[string]SlotFacts, now time.Time) []SlotStatus {
	out := make([]SlotStatus, 0, len(slots))
	for _, s := range slots {
		f := facts[s.Name]
		st := SlotStatus{
			Name:    s.Name,
			Source:  s.Source.String(),
			Present: s.Present(),
			Display: s.String(),
			Refresh: f.Refresh,
		}
		st.State, st.Detail = SlotState(s, f, now)
		if !s.Expiry.IsZero() {
			exp := s.Expiry.UTC()
			st.Expiry = &exp
		}
		out = append(out, st)
	}
	return out
}

// RouteStatuses describes routes in the order given (a Policy keeps them
// sorted by host).
func RouteStatuses(routes []config.Route) []RouteStatus {
	out := make([]RouteStatus, 0, len(routes))
	for _, r := range routes {
		st := RouteStatus{
			Host:     r.Host,
			TLS:      string(r.TLS),
			Allow:    allowText(r),
			Upstream: upstreamText(r),
			DLP:      DLPText(r.DLP),
		}
		st.Auth = AuthText(r.Auth)
		out = append(out, st)
	}
	return out
}

// DLPText is a route's DLP setting: its mode, and large_body and
// max_body_bytes where they differ from the defaults. An off route
// buffers and scans nothing, so the other two say nothing there.
func DLPText(d config.DLP) string {
	if !d.Enabled() {
		return "off"
	}
	out := string(d.Mode)
	if d.LargeBody != config.LargeBodyBlock {
		out += " large_body=" + string(d.LargeBody)
	}
	if d.MaxBody != config.DefaultDLPMaxBody {
		out += fmt.Sprintf(" max_body_bytes=%d", d.MaxBody)
	}
	return out
}

// AuthText is how a route's credential is shown: the Authorization scheme
// and slot, or the header and slot; "" for none.
func AuthText(a *config.Auth) string {
	switch {
	case a == nil:
		return ""
	case a.Header != "":
		return a.Header + ": " + a.Slot
	}
	return a.Scheme + " " + a.Slot
}

// upstreamText names where Envoy connects: the route's upstream.address
// when set, else the host on 443 as the cluster resolves it.
func upstreamText(r config.Route) string {
	u := r.Host + ":443"
	if r.Upstream.Address != "" {
		u = r.Upstream.Address
	}
	if r.Upstream.CAFile != "" {
		u += " ca=" + r.Upstream.CAFile
	}
	return u
}

// allowText summarises a route's matches. A passthrough route is a TCP
// tunnel, so Envoy sees no method or path to match: "tunnel", not "all".
func allowText(r config.Route) string {
	if r.TLS == config.Passthrough {
		return "tunnel"
	}
	if len(r.Matches) == 0 {
		return "all"
	}
	parts := make([]string, 0, len(r.Matches))
	for _, m := range r.Matches {
		parts = append(parts, matchText(m))
	}
	return strings.Join(parts, "; ")
}

// matchText renders one match as its methods ("*" for any) followed by its
// paths ("/*" for any), a trailing "*" marking a prefix: "GET,HEAD /repos/* /user".
func matchText(m config.Match) string {
	methods := "*"
	if len(m.Methods) > 0 {
		methods = strings.Join(m.Methods, ",")
	}
	if len(m.Paths) == 0 {
		return methods + " /*"
	}
	paths := make([]string, 0, len(m.Paths))
	for _, pm := range m.Paths {
		p := pm.Value
		if pm.Type == config.PathPrefix {
			p += "*"
		}
		paths = append(paths, p)
	}
	return methods + " " + strings.Join(paths, " ")
}
