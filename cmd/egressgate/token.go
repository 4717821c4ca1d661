package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/egressgate/egressgate/xdsauth"
)

func tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the bottles' xDS tokens (revoke them one bottle at a time)",
	}
	var stateDir string
	rotate := &cobra.Command{
		Use:   "rotate BOTTLE [--state-dir DIR]",
		Short: "Revoke a bottle's Envoy and ext_proc tokens and mint new ones",
		Long: `Replace both xDS tokens of BOTTLE in STATE_DIR/tokens: its Envoy's (in its
bootstrap) and its ext_proc sidecar's (STATE_DIR/tokens/BOTTLE.jwt). The old
ones are refused from now on, also by a running control, which ends the
streams opened with them and rewrites the bottle's bootstrap. Restart the
bottle's Envoy with that bootstrap; the sidecar reads its token file again
when it reconnects. Other bottles are not touched.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bottle := args[0]
			envoyPath := xdsauth.TokenPath(stateDir, bottle, xdsauth.RoleEnvoy)
			sidecarPath := xdsauth.TokenPath(stateDir, bottle, xdsauth.RoleExtProc)
			if !exists(envoyPath) && !exists(sidecarPath) {
				return fmt.Errorf("no tokens for bottle %q in %s: is it a bottle of this state dir (--state-dir)?", bottle, filepath.Join(stateDir, "tokens"))
			}
			auth, err := xdsauth.LoadOrCreateKey(stateDir)
			if err != nil {
				return err
			}
			if err := auth.Rotate(bottle, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated the tokens of bottle %s; the old ones are refused.\n"+
				"The ext_proc sidecar picks up %s when it reconnects; restart the bottle's Envoy\n"+
				"with the bootstrap control rewrites (STATE_DIR/%s/envoy.yaml by default).\n", bottle, sidecarPath, bottle)
			return nil
		},
	}
	rotate.Flags().StringVar(&stateDir, "state-dir", ".egressgate", "the state dir of the control plane serving the bottle")
	cmd.AddCommand(rotate)
	return cmd
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
