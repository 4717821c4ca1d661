package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/egressgate/egressgate/serve"
)

func serveCommand() *cobra.Command {
	var o serve.Options
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "serve --manifest FILE",
		Short: "Run the xDS and ext_proc servers and the bottle's Envoy",
		Long: `Run the xDS and ext_proc servers and, unless --external-envoy, an Envoy child
process configured by them. Prints a line containing "ready" once Envoy has
acknowledged the configuration. SIGTERM stops egressgate and Envoy; SIGHUP,
or a change to the manifest or a credential file, reloads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := wireProcess(cmd, &o.Common, logs); err != nil {
				return err
			}
			return serve.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Manifest, "manifest", "", "bottle manifest (Markdown front matter or YAML)")
	commonFlags(f, &o.Common, &logs)
	f.StringVar(&o.EnvoyBin, "envoy", "", "Envoy binary (default $ENVOY_BIN, then envoy on PATH)")
	f.BoolVar(&o.ExternalEnvoy, "external-envoy", false, "do not start Envoy; write its bootstrap to the state dir and wait for it to connect")
	f.StringVar(&o.EnvoyAdmin, "envoy-admin", "", "Unix socket, mode 0600, for Envoy's admin API (default STATE_DIR/BOTTLE/envoy-admin.sock, under --bootstrap-dir if given)")
	f.StringVar(&o.ExtProcListen, "extproc-listen", "", "address of the built-in ext_proc server: host:port or unix:PATH (default unix:STATE_DIR/extproc.sock, or 127.0.0.1:0 with --external-envoy)")
	f.StringVar(&o.ExtProcAddress, "extproc-address", "", "use the ext_proc server at this address instead of the built-in one")
	f.StringVar(&o.ExtProcAdvertise, "extproc-advertise", "", "address Envoy dials for the built-in ext_proc server (default: the address --extproc-listen bound)")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}

func controlCommand() *cobra.Command {
	var o serve.ControlOptions
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "control --manifest FILE|DIR [--manifest …]",
		Short: "Run the xDS server for several bottles (split deployment)",
		Long: `Run only the xDS server, for every bottle named by --manifest (a file, or a
directory of .md/.yaml manifests). Each bottle's Envoy and its ext_proc sidecar
(egressgate extproc) run elsewhere and connect with the bottle's token; this
writes STATE_DIR/<bottle>/envoy.yaml and STATE_DIR/tokens/<bottle>.jwt for them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := wireProcess(cmd, &o.Common, logs); err != nil {
				return err
			}
			return serve.RunControl(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Manifests, "manifest", nil, "bottle manifest, or a directory of them (repeatable)")
	commonFlags(f, &o.Common, &logs)
	f.StringVar(&o.ExtProcAddress, "extproc-address", "127.0.0.1:9001", "address of each bottle's ext_proc sidecar, as its Envoy sees it")
	f.StringVar(&o.EnvoyAdmin, "envoy-admin", "", "absolute path, on each Envoy's file system, of its admin API's Unix socket (default STATE_DIR/BOTTLE/envoy-admin.sock, under --bootstrap-dir if given)")
	f.StringVar(&o.SidecarDir, "sidecar-dir", "", "also write each sidecar's token and the control CA here, DIR/BOTTLE/extproc.jwt and DIR/control-ca.pem, for sidecars that must not mount the state dir")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}

func extprocCommand() *cobra.Command {
	var o serve.ExtProcOptions
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "extproc --node BOTTLE --xds ADDR --token-file FILE",
		Short: "Run the ext_proc server beside a bottle's Envoy (split deployment)",
		Long: `Run the ext_proc server that strips agent credentials and injects the host's,
receiving the bottle's credential slots over xDS from egressgate control.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout = cmd.OutOrStdout()
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Logger = logger
			return serve.RunExtProc(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Node, "node", "", "the bottle name (its Envoy's node id)")
	f.StringVar(&o.XDS, "xds", "", "address of egressgate control's xDS server")
	f.StringVar(&o.TokenFile, "token-file", "", "the bottle's xDS token (written by control as STATE_DIR/tokens/BOTTLE.jwt)")
	f.StringVar(&o.XDSCA, "xds-ca", "", "the control CA that control's xDS certificate must come from (default: control-ca/ca.pem in the state dir holding --token-file)")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:9001", "address of the ext_proc gRPC server")
	f.StringVar(&o.Admin, "admin", "", "admin address for /healthz, /readyz, /metrics, /status (\"\" disables)")
	logs.register(f)
	for _, name := range []string{"node", "xds", "token-file"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// commonFlags are the flags serve and control share.
func commonFlags(f *pflag.FlagSet, c *serve.Common, logs *logFlags) {
	f.StringVar(&c.StateDir, "state-dir", ".egressgate", "directory for the bottle CA, xDS keys and tokens, and Envoy's files")
	f.StringVar(&c.BootstrapDir, "bootstrap-dir", "", "directory for Envoy bootstraps, DIR/BOTTLE/envoy.yaml (default: the state dir)")
	f.StringVar(&c.Listen, "listen", "127.0.0.1:18000", "xDS (ADS) server address")
	f.StringVar(&c.XDSAddress, "xds-address", "", "address Envoy dials for xDS, written into its bootstrap (default: the address --listen bound)")
	f.StringVar(&c.Admin, "admin", defaultAdminAddr, "admin address for /healthz, /readyz, /metrics, /status (\"\" disables)")
	f.StringVar(&c.ProxyListen, "proxy", "127.0.0.1:3128", "address of Envoy's proxy listener (the agent's HTTPS_PROXY)")
	f.StringVar(&c.CodexHome, "codex-home", "", "Codex home holding auth.json (default $CODEX_HOME, then ~/.codex)")
	f.StringVar(&c.SystemCAFile, "system-ca", "/etc/ssl/certs/ca-certificates.crt", "CA bundle, on Envoy's file system, that verifies upstreams")
	f.StringVar(&c.Audit.File, "audit-log", "", "audit trail of every agent request, JSON lines rotated by size (default STATE_DIR/audit.log; - for none)")
	f.BoolVar(&c.Audit.Stdout, "audit-stdout", false, "also write every audit record to standard output")
	logs.register(f)
}

// logFlags are --log-level and --log-format.
type logFlags struct {
	level  slog.Level
	format string
}

func (l *logFlags) register(f *pflag.FlagSet) {
	f.TextVar(&l.level, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	f.StringVar(&l.format, "log-format", "text", "log format: text (key=value) or json (one object a line, for log shippers)")
}

// logger is the process's logger, writing to w in the chosen format.
func (l logFlags) logger(w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: l.level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.format)
}

// wireProcess connects a long-running command to its process: output,
// logger, and SIGHUP as reload requests.
func wireProcess(cmd *cobra.Command, c *serve.Common, logs logFlags) error {
	logger, err := logs.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	c.Stdout = cmd.OutOrStdout()
	c.Logger = logger
	c.Reload = hangups(cmd.Context(), logger)
	return nil
}

// hangups turns SIGHUP into reload requests until ctx ends, logging each.
// A burst of signals collapses into one pending reload.
func hangups(ctx context.Context, log *slog.Logger) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				log.Info("SIGHUP: reloading the manifests and credentials")
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return reload
}
