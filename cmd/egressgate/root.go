package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/internal/buildinfo"
)

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print egressgate's version, the commit it was built from and its Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "egressgate", buildinfo.Read())
			return err
		},
	}
}

// Exit codes: 2 means the input (manifest or host credentials) is wrong and
// nothing was started; 1 means something failed at run time.
const (
	exitOK      = 0
	exitFailure = 1
	exitInvalid = 2
)

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "egressgate",
		Short:         "Control service for the Envoy egress proxy of sandboxed coding agents",
		Version:       buildinfo.Read().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("egressgate {{.Version}}\n")
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCommand(), controlCommand(), extprocCommand(), validateCommand(), agentEnvCommand(), statusCommand(), auditCommand(), tokenCommand(), versionCommand())
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var invalid *config.Errors
	code := exitFailure
	if errors.As(err, &invalid) {
		code = exitInvalid
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "egressgate") && code != exitInvalid {
		msg = "egressgate: " + msg
	}
	fmt.Fprintln(stderr, msg)
	return code
}
