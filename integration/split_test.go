package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/egressgate/egressgate/admin"
	"github.com/egressgate/egressgate/audit"
	"github.com/egressgate/egressgate/envoy"
	"github.com/egressgate/egressgate/extprocapi"
	"github.com/egressgate/egressgate/internal/testenv"
	"github.com/egressgate/egressgate/xdsauth"
)

// splitDeployment is `egressgate control` for two bottles, and for bottle
// "itest" its ext_proc sidecar and its Envoy: three processes, as in a
// container deployment.
type splitDeployment struct {
	egress
	control    *bottle
	controlArg []string
	extproc    *bottle
	envoy      *envoy.Process
	xds        string
	extProc    string // the sidecar ext_proc server's address
}

const otherBottleSecret = "bottle-b-secret-must-stay-in-b"

func startSplit(t testing.TB, manifestA string, codexHome string) *splitDeployment {
	t.Helper()
	state := t.TempDir()
	dir := t.TempDir()
	pathA := filepath.Join(dir, "a.md")
	replaceFile(t, pathA, manifestA)
	tokenB := filepath.Join(dir, "b-token")
	replaceFile(t, tokenB, otherBottleSecret)
	replaceFile(t, filepath.Join(dir, "b.yaml"), fmt.Sprintf(
		"name: other\negress:\n  routes:\n    - host: b-only.example.test\n      auth: {scheme: Bearer, token_file: %q}\n", tokenB))
	manifests := []string{"--manifest", pathA, "--manifest", filepath.Join(dir, "b.yaml")}
	for attempt := 1; ; attempt++ {
		d, clash, err := trySplit(t, state, codexHome, manifests)
		if err == nil {
			return d
		}
		if !clash || attempt == portAttempts {
			t.Fatal(err)
		}
		t.Logf("attempt %d: %v; retrying with other ports", attempt, err)
	}
}

// trySplit starts the three processes on fresh ports. clash reports that
// one of the ports was taken before it could be bound.
func trySplit(t testing.TB, state, codexHome string, manifests []string) (d *splitDeployment, clash bool, err error) {
	d = &splitDeployment{egress: egress{proxy: freePort(t), stateDir: state}, xds: freePort(t), extProc: freePort(t)}
	d.controlArg = append(append([]string{"control"}, manifests...),
		"--state-dir", state, "--listen", d.xds, "--admin", "127.0.0.1:0", "--proxy", d.proxy,
		"--extproc-address", d.extProc, "--codex-home", codexHome, "--log-level", "debug")
	d.control = &bottle{t: t, egress: egress{stateDir: state}}
	if err := d.control.tryRun(d.controlArg...); err != nil {
		return nil, portClash(d.control), err
	}
	d.extproc = &bottle{t: t, egress: egress{stateDir: state}}
	if err := d.extproc.tryRun("extproc", "--node", "itest", "--xds", d.xds,
		"--token-file", filepath.Join(state, "tokens", "itest.jwt"), "--listen", d.extProc, "--admin", "127.0.0.1:0", "--log-level", "debug"); err != nil {
		d.control.stop()
		return nil, portClash(d.extproc), err
	}
	if err := d.startEnvoy(t); err != nil {
		d.control.stop()
		d.extproc.stop()
		return nil, strings.Contains(err.Error(), "ddress already in use"), err
	}
	return d, false, nil
}

// startEnvoy runs the bottle's Envoy from the bootstrap control wrote, and
// waits until its proxy listener accepts connections.
func (d *splitDeployment) startEnvoy(t testing.TB) error {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	proc, err := envoy.Start(ctx, envoy.Options{
		Bin:              testenv.EnvoyBinary(t),
		ConfigPath:       filepath.Join(d.stateDir, "itest", "envoy.yaml"),
		LogPath:          filepath.Join(d.stateDir, "itest", "envoy.log"),
		AdminAddressPath: filepath.Join(d.stateDir, "itest", "envoy-admin.txt"),
	})
	if err != nil {
		return err
	}
	t.Cleanup(func() { _ = proc.Stop(context.Background()) })
	readyCtx, readyCancel := context.WithTimeout(ctx, startTimeout)
	defer readyCancel()
	if err := proc.WaitReady(readyCtx); err != nil {
		return fmt.Errorf("envoy: %w\n%s", err, proc.LogTail(30))
	}
	// Envoy reports ready even when a listener failed to bind.
	deadline := time.Now().Add(propagation)
	for {
		conn, err := net.DialTimeout("tcp", d.proxy, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = proc.Stop(context.Background())
			return fmt.Errorf("envoy's proxy listener %s never accepted: %v\n%s", d.proxy, err, proc.LogTail(30))
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not synchronisation
	}
	d.envoy = proc
	return nil
}

func TestSplitDeployment(t *testing.T) {
	pki := newUpstreamPKI(t, append(testHosts, "new.example.test")...)
	up := newUpstream(t, pki)
	login := newHostLogin(t, time.Now().Add(time.Hour))
	d := startSplit(t, codexManifest(true, up, pki), login.home)
	parent := t

	coreDataPath(t, d.egress, up, login)

	t.Run("the control plane keeps the audit trail", func(t *testing.T) {
		auditEachKind(t, d.egress, login)
	})

	t.Run("streams without the bottle's token are refused", func(t *testing.T) {
		other, err := xdsauth.LoadOrCreateKey(t.TempDir())
		require.NoError(t, err)
		forged, err := other.Mint("itest", xdsauth.RoleEnvoy, time.Now(), time.Hour)
		require.NoError(t, err)
		tokenB := bootstrapToken(t, d.stateDir, "other")
		for name, token := range map[string]string{"no token": "", "forged token": forged, "other bottle's token": tokenB} {
			_, err := fetchClusters(t, d.stateDir, d.xds, token, "itest")
			assert.Error(t, err, name)
		}
		// Bottle B's own token gets B's configuration, and nothing of A's.
		names, err := fetchClusters(t, d.stateDir, d.xds, tokenB, "other")
		require.NoError(t, err)
		assert.Contains(t, names, "upstream/b-only.example.test")
		assert.NotContains(t, names, "upstream/chatgpt.com")
	})

	t.Run("ext_proc answers only callers with the bottle's key, over TLS from the control CA", func(t *testing.T) {
		// Everything Envoy would send for the chatgpt.com route, but the key.
		ask := func(creds credentials.TransportCredentials) error {
			conn, err := grpc.NewClient(d.extProc, grpc.WithTransportCredentials(creds))
			require.NoError(t, err)
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, extprocapi.MetadataHost, "chatgpt.com",
				extprocapi.MetadataSlot, "EGRESS_TOKEN_0", extprocapi.MetadataScheme, "Bearer")
			stream, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
			if err != nil {
				return err
			}
			_ = stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}})
			resp, err := stream.Recv()
			assert.Nil(t, resp, "an unauthenticated caller got an answer")
			return err
		}
		err := ask(controlCreds(t, d.stateDir))
		assert.Equal(t, codes.Unauthenticated, grpcstatus.Code(err), "no caller key: %v", err)
		err = ask(insecure.NewCredentials())
		assert.Equal(t, codes.Unavailable, grpcstatus.Code(err), "a plaintext client: %v", err)
		err = ask(credentials.NewTLS(&tls.Config{RootCAs: bottlePool(t, d.stateDir), ServerName: "127.0.0.1"}))
		assert.ErrorContains(t, err, "certificate signed by unknown authority", "the bottle CA does not vouch for the sidecar")
	})

	t.Run("bottle A never receives bottle B's routes or slots", func(t *testing.T) {
		socket, err := d.envoy.AdminSocket(context.Background())
		require.NoError(t, err)
		code, dump, err := envoyAdmin(t, socket, "/config_dump?include_eds")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		assert.Contains(t, dump, "chatgpt.com")
		assert.NotContains(t, dump, "b-only.example.test")
		assert.NotContains(t, dump, otherBottleSecret)
		assert.NotContains(t, dump, login.accessToken, "slot values go to ext_proc, not Envoy")

		slots := status(t, d.extproc.admin).Bottles[0].Slots
		require.Len(t, slots, 1)
		assert.Equal(t, "EGRESS_TOKEN_0", slots[0].Name)
		assert.Contains(t, slots[0].Source, "auth.json")
	})

	t.Run("envoy keeps serving while the control plane restarts", func(t *testing.T) {
		pid := d.envoy.PID()
		d.control.stop()
		require.NoError(t, d.control.exitErr)
		client := d.agent(t, true)
		req, err := http.NewRequest(http.MethodGet, "https://chatgpt.com/backend-api/while-away", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "Bearer "+login.accessToken, lastRequestTo(t, up, "/backend-api/while-away").Header.Get("Authorization"))

		// A route added while the control plane is down arrives once it is
		// back, on the same Envoy.
		manifest := d.controlArg[2]
		replaceFile(t, manifest, strings.Replace(readFile(t, manifest), "  routes:\n",
			fmt.Sprintf("  routes:\n    - host: new.example.test\n      upstream: {address: %q, ca_file: %q}\n", up.addr(), pki.caPath), 1))
		// The test's, not this subtest's: the control plane must outlive
		// it for the subtests after.
		d.control = startProcess(parent, d.stateDir, d.controlArg...)
		eventually(t, propagation, "the new route after the control plane returned", func() bool {
			resp, err := d.agent(t, true).Get("https://new.example.test/after-restart")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		assert.Equal(t, pid, d.envoy.PID())
	})

	// Last: it stops the bottle's login. The sidecar is where Envoy
	// reports the upstream's 401, and its status shows it.
	t.Run("an upstream rejection stops the login at the sidecar", func(t *testing.T) {
		client := d.agent(t, false)
		up.revoke("Bearer " + login.accessToken)
		code, _ := chatgptTurn(t, client)
		require.Equal(t, http.StatusUnauthorized, code)
		eventually(t, propagation, "the sidecar to mark the login rejected", func() bool {
			return status(t, d.extproc.admin).Bottles[0].Slots[0].State == admin.SlotRejected
		})
		code, body := chatgptTurn(t, client)
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, body, "chatgpt.com rejected the host's Codex login")
	})

	// Last: it stops the sidecar. Envoy fails closed, and the control
	// plane, which Envoy streams the trail to, still records it.
	t.Run("the sidecar gone: fail closed, and audited", func(t *testing.T) {
		d.extproc.stop()
		code := get(t, d.agent(t, false), "https://api.example.test/allowed/split-failed-closed")
		assert.Equal(t, http.StatusServiceUnavailable, code)
		r := recordFor(t, d.stateDir, "the fail-closed request", pathIs("/allowed/split-failed-closed"))
		assert.Equal(t, audit.FailedClosed, r.Decision, "%+v", r)
	})
}

// fetchClusters opens an ADS stream as node with token and returns the
// names of the clusters it is sent, or the error that refused it.
func fetchClusters(t *testing.T, stateDir, xdsAddr, token, node string) ([]string, error) {
	t.Helper()
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(controlCreds(t, stateDir)))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, xdsauth.MetadataKey, "Bearer "+token)
	}
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}, TypeUrl: resource.ClusterType}); err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range resp.GetResources() {
		names = append(names, clusterName(t, r.GetValue()))
	}
	return names, nil
}

func clusterName(t *testing.T, raw []byte) string {
	t.Helper()
	var c clusterv3.Cluster
	require.NoError(t, proto.Unmarshal(raw, &c))
	return c.GetName()
}
