package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReloadCompilesOnlyWhatChanged: with many bottles on one control
// plane, a file event must recompile the bottles that read a changed file
// and leave the others alone; SIGHUP still recompiles every one.
func TestReloadCompilesOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared-token")
	own := filepath.Join(dir, "own-token")
	require.NoError(t, os.WriteFile(shared, []byte("shared-1"), 0o600))
	require.NoError(t, os.WriteFile(own, []byte("own-1"), 0o600))
	manifest := func(name, token string) string {
		return fmt.Sprintf("name: %s\negress:\n  routes:\n    - host: %s.example.test\n      auth: {scheme: Bearer, token_file: %q}\n", name, name, token)
	}
	clock := &fakeClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	tp := newTestPlane(t, manifest("b0", shared), clock)
	var paths []string
	for i, token := range []string{shared, own} {
		path := filepath.Join(dir, fmt.Sprintf("b%d.yaml", i+1))
		require.NoError(t, os.WriteFile(path, []byte(manifest(fmt.Sprintf("b%d", i+1), token)), 0o600))
		paths = append(paths, path)
	}
	tp.addManifests(paths)
	require.NoError(t, tp.loadAll(context.Background()))

	reloaded := func(trigger string) []string {
		clock.advance(time.Minute)
		tp.reloadAll(context.Background(), trigger)
		var names []string
		for _, b := range tp.bottles {
			if b.lastReload.Equal(clock.now()) {
				names = append(names, b.name)
			}
		}
		return names
	}
	// A file a bottle names for the first time was read before it could be
	// stamped, so the first reload after its first load compiles it again
	// (follow does that reload right after start).
	require.Equal(t, []string{"b1", "b2"}, reloaded(triggerFiles), "first reload of new bottles")
	require.Empty(t, reloaded(triggerFiles), "nothing changed")

	require.NoError(t, os.WriteFile(paths[1], []byte(manifest("b2", own)+"    - host: more.example.test\n"), 0o600))
	require.Equal(t, []string{"b2"}, reloaded(triggerFiles), "one manifest edited")
	require.Equal(t, []string{"b2.example.test", "more.example.test"}, routeHosts(tp.bottles[2].current.policy))

	tmp := shared + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte("shared-2"), 0o600))
	require.NoError(t, os.Rename(tmp, shared))
	require.Equal(t, []string{"b0", "b1"}, reloaded(triggerFiles), "a token file two bottles share")
	require.Equal(t, "shared-2", tp.bottles[1].current.policy.Slots[0].Value.Reveal())

	require.Equal(t, []string{"b0", "b1", "b2"}, reloaded("SIGHUP"), "SIGHUP compiles every bottle")
}
