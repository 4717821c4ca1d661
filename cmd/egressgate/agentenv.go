package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/agentenv"
	"github.com/egressgate/egressgate/config"
)

func agentEnvCommand() *cobra.Command {
	var o agentenv.Options
	var codexHome string
	cmd := &cobra.Command{
		Use:   "agent-env --manifest FILE --out DIR",
		Short: "Write what a bottle's agent container is given: env file, CA, placeholder login",
		Long: `Write into DIR what the agent container receives: "env" (proxy and CA
variables, in docker --env-file format), "ca.pem" (the bottle CA), and for the
codex template with forward_host_credentials a placeholder "codex/auth.json"
that keeps Codex in ChatGPT mode while holding no real token. The paths in
"env" are the container's: mount DIR at ` + agentenv.MountPoint + ` (writable, for
CODEX_HOME), or mount it elsewhere and pass that directory (or ca.pem's path
in it) as --ca-path. Each run also plants canaries, fake credentials new to
the run: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (also in
"aws/credentials", named by AWS_SHARED_CREDENTIALS_FILE) unless the manifest
routes AWS, and GITHUB_TOKEN; they are recorded in the state dir
(BOTTLE/canaries.json), where serve and control pick them up for the egress to
watch for. --no-canaries leaves them out. Prints the paths written, never
values.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Host = config.Options{CodexHome: codexHome}
			res, err := agentenv.Generate(o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, f := range res.Files {
				fmt.Fprintln(out, "wrote", f)
			}
			for _, n := range res.Notes {
				fmt.Fprintln(out, "note:", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Manifest, "manifest", "", "bottle manifest (Markdown front matter or YAML)")
	f.StringVar(&o.OutDir, "out", "", "directory to write env, ca.pem and codex/auth.json into")
	f.StringVar(&o.StateDir, "state-dir", agentenv.DefaultStateDir, "egressgate's state directory, holding the bottle CA and the canaries planted (as for serve)")
	f.StringVar(&codexHome, "codex-home", "", "host Codex home holding auth.json (default $CODEX_HOME, then ~/.codex); read only when forwarded")
	f.StringVar(&o.ProxyURL, "proxy-url", agentenv.DefaultProxyURL, "the egress proxy as the agent reaches it")
	f.StringVar(&o.CAPath, "ca-path", agentenv.DefaultCAPath, "where the agent container mounts DIR, or ca.pem's path there; every path in env lies in that directory")
	f.BoolVar(&o.NoCanaries, "no-canaries", false, "plant no fake AWS and GitHub credentials (canaries) in env and aws/credentials")
	for _, name := range []string{"manifest", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
