package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/egressgate/egressgate/internal/securefile"
	"github.com/egressgate/egressgate/xdsauth"
)

// bottleFiles writes what each bottle's Envoy and sidecar need from
// control, and rewrites it when the tokens change (a rotation): the
// bootstrap with the Envoy's token, and with --sidecar-dir a copy of the
// sidecar's token and of the control CA. Only the reloading goroutine
// calls it.
type bottleFiles struct {
	o       ControlOptions
	xdsAddr string
	cp      *controlPlane
	written map[string]writtenTokens
}

type writtenTokens struct{ envoy, sidecar string }

// sync brings bottle's files in line with its current tokens; rotated
// reports that they replaced earlier ones.
func (f *bottleFiles) sync(bottle string) (rotated bool, err error) {
	now := time.Now()
	envoyToken, _, err := f.cp.auth.EnsureToken(bottle, xdsauth.RoleEnvoy, now)
	if err != nil {
		return false, err
	}
	sidecarToken, _, err := f.cp.auth.EnsureToken(bottle, xdsauth.RoleExtProc, now)
	if err != nil {
		return false, err
	}
	before, seen := f.written[bottle]
	if before.envoy != envoyToken {
		if _, err := writeBootstrap(f.o.BootstrapDir, bottle, f.xdsAddr, f.o.EnvoyAdmin, envoyToken, f.cp.xdsCA()); err != nil {
			return false, fmt.Errorf("bootstrap for %s: %w", bottle, err)
		}
	}
	if f.o.SidecarDir != "" && before.sidecar != sidecarToken {
		if err := f.writeSidecar(bottle, sidecarToken); err != nil {
			return false, err
		}
	}
	f.written[bottle] = writtenTokens{envoy: envoyToken, sidecar: sidecarToken}
	return seen && before != f.written[bottle], nil
}

func (f *bottleFiles) writeSidecar(bottle, token string) error {
	dir := filepath.Join(f.o.SidecarDir, bottle)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The CA is public; the token file is 0600 like its original.
	if err := securefile.WriteIfChanged(filepath.Join(f.o.SidecarDir, "control-ca.pem"), f.cp.controlCA.CertPEM(), 0o644); err != nil {
		return err
	}
	return securefile.WriteIfChanged(sidecarTokenPath(f.o.SidecarDir, bottle), []byte(token), 0o600)
}

// sidecarTokenPath is where --sidecar-dir puts a bottle's sidecar token.
func sidecarTokenPath(dir, bottle string) string {
	return filepath.Join(dir, bottle, "extproc.jwt")
}

// remove deletes a withdrawn bottle's files; its tokens are already
// revoked, so a copy left behind would be refused anyway.
func (f *bottleFiles) remove(bottle string) {
	delete(f.written, bottle)
	paths := []string{bootstrapPath(f.o.BootstrapDir, bottle)}
	if f.o.SidecarDir != "" {
		paths = append(paths, sidecarTokenPath(f.o.SidecarDir, bottle))
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.cp.log.Warn("cannot remove a withdrawn bottle's file", "bottle", bottle, "path", p, "error", err)
		}
	}
}
