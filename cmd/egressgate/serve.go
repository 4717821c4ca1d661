package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/serve"
)

func serveCommand() *cobra.Command {
	var o serve.Options
	var logLevel slog.Level
	cmd := &cobra.Command{
		Use:   "serve --manifest FILE",
		Short: "Run the xDS and ext_proc servers and the bottle's Envoy",
		Long: `Run the xDS and ext_proc servers and, unless --external-envoy, an Envoy child
process configured by them. Prints a line containing "ready" once Envoy has
acknowledged the configuration. SIGTERM stops egressgate and Envoy; SIGHUP
reloads the manifest and host credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					case <-cmd.Context().Done():
						return
					}
				}
			}()
			o.Reload = reload
			o.Stdout = cmd.OutOrStdout()
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: logLevel}))
			return serve.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Manifest, "manifest", "", "bottle manifest (Markdown front matter or YAML)")
	f.StringVar(&o.StateDir, "state-dir", ".egressgate", "directory for the bottle CA, keys and Envoy's files")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:18000", "xDS (ADS) server address")
	f.StringVar(&o.ProxyListen, "proxy", "127.0.0.1:3128", "address of Envoy's proxy listener (the agent's HTTPS_PROXY)")
	f.StringVar(&o.EnvoyBin, "envoy", "", "Envoy binary (default $ENVOY_BIN, then envoy on PATH)")
	f.BoolVar(&o.ExternalEnvoy, "external-envoy", false, "do not start Envoy; wait for one to connect")
	f.StringVar(&o.EnvoyAdmin, "envoy-admin", "127.0.0.1:0", "Envoy admin address (loopback; port 0 picks one)")
	f.StringVar(&o.CodexHome, "codex-home", "", "Codex home holding auth.json (default $CODEX_HOME, then ~/.codex)")
	f.StringVar(&o.ExtProcListen, "extproc-listen", "127.0.0.1:0", "address of the built-in ext_proc server")
	f.StringVar(&o.ExtProcAddress, "extproc-address", "", "use the ext_proc server at this address instead of the built-in one")
	f.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}
