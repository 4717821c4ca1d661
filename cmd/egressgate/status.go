package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/hostlogin"
)

// defaultAdminAddr is where `serve --admin` listens and `status --admin`
// looks unless told otherwise: loopback, because /status and /metrics are
// for the host's operator, never the bottle.
const defaultAdminAddr = "127.0.0.1:9902"

const (
	// statusTimeout bounds the whole request: a local admin endpoint answers
	// in milliseconds, so a longer wait means something is wedged, and the
	// operator is better told so than left staring at a silent terminal.
	statusTimeout = 5 * time.Second
	// maxStatusBody caps what we read, in case ADDR is some other, chattier
	// server.
	maxStatusBody = 8 << 20
)

func statusCommand() *cobra.Command {
	var addr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--admin ADDR] [--json]",
		Short: "Show a running egressgate's bottles: versions, Envoy ACKs, routes, slots, last reload error",
		Long: `Ask a running egressgate (serve, control or extproc) at its admin address for
its live state: per bottle, the config version served and the version Envoy
has acknowledged, the last reload and its error, the routes, and the
credential slots with source, state and expiry. Credential values are
never shown.

Exits 0 when every bottle's last reload succeeded and its Envoy is
connected, 1 otherwise (after printing the status), so scripts need not
read the text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, st, err := fetchStatus(cmd.Context(), addr)
			if err != nil {
				return err
			}
			if asJSON {
				_, err = cmd.OutOrStdout().Write(body)
			} else {
				err = printStatus(cmd.OutOrStdout(), st, time.Now())
			}
			if err != nil {
				return err
			}
			if problems := unhealthy(st); len(problems) > 0 {
				return fmt.Errorf("egressgate status: %s", strings.Join(problems, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "admin", defaultAdminAddr, "admin address of the running egressgate (its --admin)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw /status JSON")
	return cmd
}

// fetchStatus GETs ADDR/status and returns the body (newline-terminated)
// and its decoded form. Every failure is one line naming the address,
// because the usual cause is a wrong or missing --admin.
func fetchStatus(ctx context.Context, addr string) ([]byte, admin.Status, error) {
	var st admin.Status
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statusURL(addr), nil)
	if err != nil {
		return nil, st, fmt.Errorf("egressgate status: bad --admin %q: %w", addr, err)
	}
	// A zero Transport uses no proxy: the admin address is reached directly
	// even when HTTP(S)_PROXY points at the egress proxy itself.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, st, fmt.Errorf("egressgate status: no egressgate admin at %s: %s; is egressgate serve running with --admin %s?",
			addr, dialProblem(err), addr)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return nil, st, fmt.Errorf("egressgate status: reading %s: %s", req.URL, dialProblem(err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, st, fmt.Errorf("egressgate status: %s answered %s; is %s egressgate's admin address (not Envoy's)?",
			req.URL, resp.Status, addr)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, st, fmt.Errorf("egressgate status: %s did not answer with an egressgate status: %v", req.URL, err)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	return body, st, nil
}

// unhealthy lists what makes st need an operator: a bottle whose last
// reload failed, or whose Envoy is not connected (serve and control; an
// extproc sidecar has no Envoy connection of its own to report).
func unhealthy(st admin.Status) []string {
	var out []string
	for _, b := range st.Bottles {
		if b.LastReloadError != "" {
			out = append(out, "bottle "+oneLine(b.Name)+": the last reload failed")
		}
		if st.Mode != admin.ModeExtProc && !b.EnvoyConnected {
			out = append(out, "bottle "+oneLine(b.Name)+": Envoy is not connected")
		}
	}
	return out
}

// statusURL accepts a bare host:port, as the flag documents, or a full
// http:// base URL for an admin address behind a forwarder.
func statusURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/") + "/status"
	}
	return "http://" + addr + "/status"
}

// dialProblem drops the `Get "URL":` wrapper the caller already states and
// names a timeout in words rather than as "context deadline exceeded".
func dialProblem(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", statusTimeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return err.Error()
}

// printStatus writes st for a person. A failed reload comes first under
// its bottle: it is the one thing an operator must act on, and the rest of
// the block describes the older config still being served.
func printStatus(w io.Writer, st admin.Status, now time.Time) error {
	if st.Version != "" {
		fmt.Fprintf(w, "egressgate %s\n", oneLine(st.Version))
	}
	if st.CA != nil {
		exp := st.CA.NotAfter
		fmt.Fprintf(w, "bottle CA %s: expires %s\n", oneLine(st.CA.Path), expiryText(&exp, now))
	}
	if len(st.Bottles) == 0 {
		_, err := fmt.Fprintf(w, "egressgate %s: no bottles loaded\n", oneLine(st.Mode))
		return err
	}
	for i, b := range st.Bottles {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printBottle(w, st.Mode, b, now); err != nil {
			return err
		}
	}
	return nil
}

func printBottle(w io.Writer, mode string, b admin.BottleStatus, now time.Time) error {
	fmt.Fprintf(w, "bottle %s (mode %s)\n", oneLine(b.Name), oneLine(mode))
	if b.LastReloadError != "" {
		fmt.Fprintf(w, "  LAST RELOAD FAILED; still serving config version %s:\n", oneLine(b.ConfigVersion))
		for line := range strings.SplitSeq(b.LastReloadError, "\n") {
			fmt.Fprintf(w, "    %s\n", oneLine(line))
		}
	}
	tw := newTable(w)
	if b.Manifest != "" {
		fmt.Fprintf(tw, "  manifest:\t%s\n", oneLine(b.Manifest))
	}
	fmt.Fprintf(tw, "  config version:\t%s\n", oneLine(b.ConfigVersion))
	fmt.Fprintf(tw, "  envoy:\t%s\n", envoyText(b))
	fmt.Fprintf(tw, "  last reload:\t%s\n", reloadText(b, now))
	if !b.LeafRenewal.IsZero() {
		fmt.Fprintf(tw, "  leaf certificates:\trenewed %s\n", whenText(b.LeafRenewal, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printRoutes(w, b.Routes); err != nil {
		return err
	}
	return printSlots(w, b.Slots, now)
}

func printRoutes(w io.Writer, routes []admin.RouteStatus) error {
	fmt.Fprintln(w, "  routes:")
	if len(routes) == 0 {
		fmt.Fprintln(w, "    (none)")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "    HOST\tTLS\tAUTH\tALLOW\tUPSTREAM\tDLP")
	for _, r := range routes {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", oneLine(r.Host), oneLine(r.TLS), orDash(r.Auth), oneLine(r.Allow), oneLine(r.Upstream), oneLine(orDash(r.DLP)))
	}
	return tw.Flush()
}

func printSlots(w io.Writer, slots []admin.SlotStatus, now time.Time) error {
	fmt.Fprintln(w, "  slots:")
	if len(slots) == 0 {
		fmt.Fprintln(w, "    (none)")
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "    NAME\tSOURCE\tPRESENT\tSTATE\tEXPIRY")
	for _, s := range slots {
		present := "no"
		if s.Present {
			present = "yes"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\n", oneLine(s.Name), oneLine(s.Source), present, stateText(s.State), expiryText(s.Expiry, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// What to do about a slot that is not sent, and the refresher's news,
	// under the table: they are sentences, not cells.
	for _, s := range slots {
		if s.Detail != "" {
			fmt.Fprintf(w, "    %s %s: %s\n", oneLine(s.Name), stateText(s.State), oneLine(s.Detail))
		}
		if s.Refresh != nil {
			fmt.Fprintf(w, "    %s refresh: %s\n", oneLine(s.Name), refreshText(s.Refresh, now))
		}
	}
	return nil
}

// stateText is a slot state for people ("logged out", not "logged_out").
func stateText(state string) string {
	if state == "" {
		return "-"
	}
	return strings.ReplaceAll(oneLine(state), "_", " ")
}

// refreshText is the host login refresher's state in a line.
func refreshText(r *hostlogin.State, now time.Time) string {
	var parts []string
	if r.Error != "" {
		parts = append(parts, "FAILING since "+whenText(r.FailingSince, now)+": "+oneLine(r.Error))
	}
	if !r.LastRefresh.IsZero() {
		parts = append(parts, "last refreshed "+whenText(r.LastRefresh, now))
	}
	switch {
	case r.Stopped:
		parts = append(parts, "stopped until the host logs in again")
	case !r.NextRefresh.IsZero():
		parts = append(parts, "next "+whenText(r.NextRefresh, now))
	default:
		parts = append(parts, "waiting for a login on the host")
	}
	return strings.Join(parts, "; ")
}

// whenText is a moment relative to now, then absolute.
func whenText(t, now time.Time) string {
	d := t.Sub(now)
	rel := "in " + shortDuration(d)
	if d <= 0 {
		rel = shortDuration(-d) + " ago"
	}
	return rel + " (" + t.UTC().Format(time.RFC3339) + ")"
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0) }

// envoyText says whether Envoy is running the served config: connected and
// ACKed at ConfigVersion, or behind it, or not there at all.
func envoyText(b admin.BottleStatus) string {
	acked, served := oneLine(b.AckedVersion), oneLine(b.ConfigVersion)
	switch {
	case !b.EnvoyConnected && acked == "":
		return "not connected"
	case !b.EnvoyConnected:
		return "not connected (last acked version " + acked + ")"
	case acked == "":
		return "connected, no version acked yet"
	case acked == served:
		return "connected, acked version " + acked + " (current)"
	default:
		return "connected, acked version " + acked + "; version " + served + " not acked yet"
	}
}

func reloadText(b admin.BottleStatus, now time.Time) string {
	if b.LastReload.IsZero() {
		return "none since start"
	}
	outcome := "ok"
	if b.LastReloadError != "" {
		outcome = "FAILED (above)"
	}
	return fmt.Sprintf("%s (%s ago), %s", b.LastReload.UTC().Format(time.RFC3339), shortDuration(now.Sub(b.LastReload)), outcome)
}

// expiryText is relative first ("in 42m", "expired 3m ago"), since that
// is what decides whether to act, then the absolute time.
func expiryText(exp *time.Time, now time.Time) string {
	if exp == nil {
		return "unknown"
	}
	d := exp.Sub(now)
	rel := "in " + shortDuration(d)
	if d <= 0 {
		rel = "expired " + shortDuration(-d) + " ago"
	}
	return rel + " (" + exp.UTC().Format(time.RFC3339) + ")"
}

// shortDuration renders d in its two largest units at most ("42m",
// "5h12m", "3d4h"): an operator needs the order of magnitude, not
// time.Duration's nanoseconds.
func shortDuration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s)
}

// oneLine keeps a field the server sent on its own line and cell: control
// characters (a newline in a file name, a terminal escape) become '?'
// rather than breaking the table or reaching the terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
