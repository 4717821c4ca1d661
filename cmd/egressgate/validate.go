package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/config"
)

func validateCommand() *cobra.Command {
	var manifest, codexHome string
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate --manifest FILE",
		Short: "Check a manifest and its host credentials; print the resolved routes and slots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := config.Load(manifest, config.Options{CodexHome: codexHome})
			if err != nil {
				return err
			}
			if err := p.HostLoginError(); err != nil {
				return err
			}
			warnings := p.Warnings()
			for _, w := range warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if err := describe(cmd.OutOrStdout(), p); err != nil {
				return err
			}
			if strict && len(warnings) > 0 {
				return fmt.Errorf("egressgate validate: %d warning(s) and --strict", len(warnings))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manifest, "manifest", "", "bottle manifest (Markdown front matter or YAML)")
	cmd.Flags().StringVar(&codexHome, "codex-home", "", "Codex home holding auth.json (default $CODEX_HOME, then ~/.codex)")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 when there are warnings (for CI)")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}

// describe prints what a policy allows, routes as status shows them (one
// renderer for both). Slots appear only in their redacted form.
func describe(w io.Writer, p *config.Policy) error {
	fmt.Fprintf(w, "bottle %s (template %s, host credentials forwarded: %t", p.Name, p.Template, p.ForwardHostCredentials)
	if p.RefreshHostCredentials {
		fmt.Fprint(w, ", kept fresh by egressgate")
	}
	fmt.Fprint(w, ")\n\nroutes:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	// RouteStatuses keeps the order of p.Routes, so index i is one route.
	for _, r := range admin.RouteStatuses(p.Routes) {
		auth := r.Auth
		if auth == "" {
			auth = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\tauth=%s\tallow=%s\tupstream=%s\t%s\n", r.Host, r.TLS, auth, r.Allow, r.Upstream, "dlp="+r.DLP)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ndlp:")
	names := make([]string, len(p.DLPRules.Patterns))
	for i, pat := range p.DLPRules.Patterns {
		names[i] = pat.Name
	}
	if len(names) == 0 {
		names = []string{"(none)"}
	}
	// Pattern names only: literals are what the egress looks for, and
	// this output ends up in CI logs.
	fmt.Fprintf(w, "  patterns: %s\n  allowed fingerprints: %d\n", strings.Join(names, ", "), len(p.DLPRules.Allow))
	fmt.Fprintln(w, "\nslots:")
	if len(p.Slots) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, s := range p.Slots {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, s.Source, s)
	}
	return tw.Flush()
}
