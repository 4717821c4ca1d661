package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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
	"sigs.k8s.io/yaml"

	"github.com/egressgate/egressgate/pki"
	"github.com/egressgate/egressgate/xdsauth"
)

// controlDir is `egressgate control` following a manifest directory, with
// no Envoy: these tests speak xDS to it as real gRPC clients would.
type controlDir struct {
	*bottle
	dir, xds string
}

func startControlDir(t *testing.T, manifests map[string]string) *controlDir {
	t.Helper()
	state, dir := t.TempDir(), t.TempDir()
	for name, text := range manifests {
		replaceFile(t, filepath.Join(dir, name), text)
	}
	c := &controlDir{dir: dir, xds: freePort(t)}
	c.bottle = startProcess(t, state, "control", "--manifest", dir, "--state-dir", state,
		"--listen", c.xds, "--admin", "127.0.0.1:0", "--proxy", freePort(t), "--log-level", "debug")
	return c
}

// tokenManifest is a bottle whose one route injects the secret in a token
// file beside it.
func tokenManifest(t *testing.T, dir, name, secret string) string {
	t.Helper()
	file := filepath.Join(dir, name+"-secret")
	replaceFile(t, file, secret)
	return fmt.Sprintf("name: %s\negress:\n  routes:\n    - host: %s.example.test\n      auth: {scheme: Bearer, token_file: %q}\n", name, name, file)
}

// bootstrapToken is the xDS token in a bottle's Envoy bootstrap: what
// whoever reads that file (Envoy's container, its volume) holds.
func bootstrapToken(t *testing.T, stateDir, bottle string) string {
	t.Helper()
	var boot struct {
		DynamicResources struct {
			AdsConfig struct {
				GrpcServices []struct {
					InitialMetadata []struct{ Key, Value string } `json:"initial_metadata"`
				} `json:"grpc_services"`
			} `json:"ads_config"`
		} `json:"dynamic_resources"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, filepath.Join(stateDir, bottle, "envoy.yaml"))), &boot))
	for _, g := range boot.DynamicResources.AdsConfig.GrpcServices {
		for _, md := range g.InitialMetadata {
			if md.Key == xdsauth.MetadataKey {
				return strings.TrimPrefix(md.Value, "Bearer ")
			}
		}
	}
	t.Fatalf("no xDS token in %s's bootstrap", bottle)
	return ""
}

func sidecarToken(t *testing.T, stateDir, bottle string) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, filepath.Join(stateDir, "tokens", bottle+".jwt")))
}

// xdsFetch asks, over ADS (SotW or delta), for every resource of typ as
// node, and returns the wire bytes of what it is sent, or the refusal.
func xdsFetch(t *testing.T, c *controlDir, token string, node *corev3.Node, typ string, delta bool) ([]byte, error) {
	t.Helper()
	return xdsFetchWith(t, c.xds, controlCreds(t, c.stateDir), token, node, typ, delta)
}

// controlCreds trusts the control CA of stateDir, as Envoy and the
// sidecars are told to.
func controlCreds(t *testing.T, stateDir string) credentials.TransportCredentials {
	t.Helper()
	return credentials.NewTLS(&tls.Config{RootCAs: controlPool(t, stateDir), ServerName: "127.0.0.1"})
}

func controlPool(t *testing.T, stateDir string) *x509.CertPool {
	t.Helper()
	return pemPool(t, filepath.Join(stateDir, "control-ca", "ca.pem"))
}

func bottlePool(t *testing.T, stateDir string) *x509.CertPool {
	t.Helper()
	return pemPool(t, filepath.Join(stateDir, "ca.pem"))
}

func pemPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM([]byte(readFile(t, path))), path)
	return roots
}

func xdsFetchWith(t *testing.T, addr string, creds credentials.TransportCredentials, token string, node *corev3.Node, typ string, delta bool) ([]byte, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, xdsauth.MetadataKey, "Bearer "+token)
	}
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	var msg proto.Message
	if delta {
		s, err := ads.DeltaAggregatedResources(ctx)
		if err != nil {
			return nil, err
		}
		_ = s.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typ, ResourceNamesSubscribe: []string{"*"}})
		msg, err = s.Recv()
		if err != nil {
			return nil, err
		}
	} else {
		s, err := ads.StreamAggregatedResources(ctx)
		if err != nil {
			return nil, err
		}
		_ = s.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ})
		msg, err = s.Recv()
		if err != nil {
			return nil, err
		}
	}
	return proto.Marshal(msg)
}

// TestControlLeastPrivilege is the black-box check of issue 10: with the
// token in a bottle's Envoy bootstrap no credential value can be fetched
// under any node, cluster or type; the sidecar's token fetches its own
// bottle's slots and nothing else; rotated and removed bottles' tokens
// are refused, and streams opened with them end.
func TestControlLeastPrivilege(t *testing.T) {
	dir := t.TempDir()
	const secretA, secretB = "secret-of-bottle-a-1234", "secret-of-bottle-b-5678"
	c := startControlDir(t, map[string]string{
		"a.yaml": tokenManifest(t, dir, "a", secretA),
		"b.yaml": tokenManifest(t, dir, "b", secretB),
	})
	envoyA, sidecarA := bootstrapToken(t, c.stateDir, "a"), sidecarToken(t, c.stateDir, "a")
	envoyB, sidecarB := bootstrapToken(t, c.stateDir, "b"), sidecarToken(t, c.stateDir, "b")
	require.NotEqual(t, envoyA, sidecarA, "Envoy's bootstrap holds its own token, not the sidecar's")

	clusters := []string{"", "egressgate", xdsauth.ExtProcCluster, "anything"}
	types := []string{resource.SecretType, resource.ListenerType, resource.ClusterType, resource.RouteType}
	tokens := map[string]string{"a's Envoy": envoyA, "b's Envoy": envoyB, "a's sidecar": sidecarA, "b's sidecar": sidecarB, "none": ""}
	got := map[string]bool{} // what leaked a secret: "token node cluster type delta"
	for tokenName, token := range tokens {
		for _, node := range []string{"a", "b"} {
			for _, cluster := range clusters {
				for _, typ := range types {
					for _, delta := range []bool{false, true} {
						wire, err := xdsFetch(t, c, token, &corev3.Node{Id: node, Cluster: cluster}, typ, delta)
						if err != nil {
							code := grpcstatus.Code(err)
							require.True(t, code == codes.Unauthenticated || code == codes.PermissionDenied || code == codes.DeadlineExceeded, "%s as %s/%s: %v", tokenName, node, cluster, err)
							continue
						}
						for secret, owner := range map[string]string{secretA: "a", secretB: "b"} {
							if strings.Contains(string(wire), secret) {
								got[fmt.Sprintf("%s %s/%s %s delta=%v -> %s", tokenName, node, cluster, typ[strings.LastIndex(typ, ".")+1:], delta, owner)] = true
							}
						}
					}
				}
			}
		}
	}
	assert.Equal(t, map[string]bool{
		"a's sidecar a/egressgate-extproc Secret delta=false -> a": true,
		"a's sidecar a/egressgate-extproc Secret delta=true -> a":  true,
		"b's sidecar b/egressgate-extproc Secret delta=false -> b": true,
		"b's sidecar b/egressgate-extproc Secret delta=true -> b":  true,
	}, got, "only a bottle's sidecar token fetches its slots, and only its own")

	t.Run("only TLS from the control CA", func(t *testing.T) {
		node := &corev3.Node{Id: "a", Cluster: xdsauth.ExtProcCluster}
		_, err := xdsFetchWith(t, c.xds, insecure.NewCredentials(), sidecarA, node, resource.SecretType, false)
		assert.Equal(t, codes.Unavailable, grpcstatus.Code(err), "a plaintext client: %v", err)
		other := t.TempDir()
		_, err = pki.LoadOrCreateControlCA(other, time.Now())
		require.NoError(t, err)
		_, err = xdsFetchWith(t, c.xds, controlCreds(t, other), sidecarA, node, resource.SecretType, false)
		assert.Equal(t, codes.Unavailable, grpcstatus.Code(err), "a client trusting another CA: %v", err)
		assert.ErrorContains(t, err, "certificate signed by unknown authority")
		wrongName := credentials.NewTLS(&tls.Config{RootCAs: controlPool(t, c.stateDir), ServerName: "impostor.example"})
		_, err = xdsFetchWith(t, c.xds, wrongName, sidecarA, node, resource.SecretType, false)
		assert.Equal(t, codes.Unavailable, grpcstatus.Code(err), "a name the certificate does not carry: %v", err)
		bottleCA := credentials.NewTLS(&tls.Config{RootCAs: bottlePool(t, c.stateDir), ServerName: "127.0.0.1"})
		_, err = xdsFetchWith(t, c.xds, bottleCA, sidecarA, node, resource.SecretType, false)
		assert.Equal(t, codes.Unavailable, grpcstatus.Code(err), "the bottle CA (which agents trust) vouches for nothing here: %v", err)
	})

	t.Run("a rotated token is refused and its open stream ends", func(t *testing.T) {
		open := openStream(t, c, sidecarB, &corev3.Node{Id: "b", Cluster: xdsauth.ExtProcCluster}, resource.SecretType)
		out, err := exec.Command(egressgateBin, "token", "rotate", "b", "--state-dir", c.stateDir).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "rotated the tokens of bottle b")
		assert.NotContains(t, string(out), sidecarToken(t, c.stateDir, "b"), "the CLI prints no token")

		eventually(t, propagation, "the old sidecar stream to end", func() bool {
			_, err := open.Recv()
			return grpcstatus.Code(err) == codes.Unauthenticated
		})
		for name, token := range map[string]string{"Envoy": envoyB, "sidecar": sidecarB} {
			_, err := xdsFetch(t, c, token, &corev3.Node{Id: "b", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
			assert.Equal(t, codes.Unauthenticated, grpcstatus.Code(err), "old %s token: %v", name, err)
		}
		wire, err := xdsFetch(t, c, sidecarToken(t, c.stateDir, "b"), &corev3.Node{Id: "b", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
		require.NoError(t, err, "the new sidecar token works")
		assert.Contains(t, string(wire), secretB)
		eventually(t, propagation, "the bootstrap to carry the new Envoy token", func() bool {
			return bootstrapToken(t, c.stateDir, "b") != envoyB
		})
		_, err = xdsFetch(t, c, bootstrapToken(t, c.stateDir, "b"), &corev3.Node{Id: "b"}, resource.ListenerType, false)
		require.NoError(t, err, "the rewritten bootstrap's token works")
		_, err = xdsFetch(t, c, sidecarA, &corev3.Node{Id: "a", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
		require.NoError(t, err, "bottle a is not touched")

		out, err = exec.Command(egressgateBin, "token", "rotate", "nosuch", "--state-dir", c.stateDir).CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), `no tokens for bottle "nosuch"`)
	})

	t.Run("a removed bottle's tokens are refused", func(t *testing.T) {
		envoyB, sidecarB := bootstrapToken(t, c.stateDir, "b"), sidecarToken(t, c.stateDir, "b")
		open := openStream(t, c, sidecarB, &corev3.Node{Id: "b", Cluster: xdsauth.ExtProcCluster}, resource.SecretType)
		require.NoError(t, os.Remove(filepath.Join(c.dir, "b.yaml")))
		eventually(t, propagation, "b's open stream to end", func() bool {
			_, err := open.Recv()
			return grpcstatus.Code(err) == codes.Unauthenticated
		})
		for name, token := range map[string]string{"Envoy": envoyB, "sidecar": sidecarB} {
			_, err := xdsFetch(t, c, token, &corev3.Node{Id: "b", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
			assert.Equal(t, codes.Unauthenticated, grpcstatus.Code(err), "%s token of a removed bottle: %v", name, err)
		}
		assert.NoFileExists(t, filepath.Join(c.stateDir, "b", "envoy.yaml"), "its bootstrap is withdrawn too")
		_, err := xdsFetch(t, c, sidecarA, &corev3.Node{Id: "a", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
		require.NoError(t, err, "bottle a is not touched")
	})
}

// openStream opens an ADS stream and takes its first response, leaving it
// open for the test to watch.
func openStream(t *testing.T, c *controlDir, token string, node *corev3.Node, typ string) discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	conn, err := grpc.NewClient(c.xds, grpc.WithTransportCredentials(controlCreds(t, c.stateDir)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), xdsauth.MetadataKey, "Bearer "+token))
	t.Cleanup(cancel)
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ}))
	_, err = s.Recv()
	require.NoError(t, err)
	return s
}

// TestControlServesWhatLoads: one bad manifest among good ones does not
// stop control; the bad one is reported, and the directory is followed: a
// manifest fixed, added or removed live is picked up.
func TestControlServesWhatLoads(t *testing.T) {
	dir := t.TempDir()
	c := startControlDir(t, map[string]string{
		"a.yaml":   tokenManifest(t, dir, "a", "secret-a"),
		"bad.yaml": "name: bad\negress:\n  routes:\n    - hots: typo.example.test\n",
	})
	st := status(t, c.admin)
	require.Len(t, st.Bottles, 2)
	byManifest := map[string]string{}
	for _, b := range st.Bottles {
		byManifest[filepath.Base(b.Manifest)] = b.LastReloadError
	}
	assert.Empty(t, byManifest["a.yaml"])
	assert.Contains(t, byManifest["bad.yaml"], "bad.yaml", "status names the broken manifest")
	_, err := xdsFetch(t, c, bootstrapToken(t, c.stateDir, "a"), &corev3.Node{Id: "a"}, resource.ListenerType, false)
	require.NoError(t, err, "the good bottle is served")
	metrics := httpGet(t, "http://"+c.admin+"/metrics")
	assert.Contains(t, metrics, `egressgate_last_reload_success{bottle="`+filepath.Join(c.dir, "bad.yaml")+`"} 0`)

	replaceFile(t, filepath.Join(c.dir, "c.yaml"), tokenManifest(t, dir, "c", "secret-c"))
	eventually(t, propagation, "a manifest added live to be served", func() bool {
		_, err := os.Stat(filepath.Join(c.stateDir, "c", "envoy.yaml"))
		return err == nil
	})
	wire, err := xdsFetch(t, c, sidecarToken(t, c.stateDir, "c"), &corev3.Node{Id: "c", Cluster: xdsauth.ExtProcCluster}, resource.SecretType, false)
	require.NoError(t, err)
	assert.Contains(t, string(wire), "secret-c")

	replaceFile(t, filepath.Join(c.dir, "bad.yaml"), "name: bad\negress:\n  routes:\n    - host: fixed.example.test\n")
	eventually(t, propagation, "the fixed manifest to be served", func() bool {
		_, err := os.Stat(filepath.Join(c.stateDir, "bad", "envoy.yaml"))
		return err == nil
	})

	require.NoError(t, os.Remove(filepath.Join(c.dir, "c.yaml")))
	eventually(t, propagation, "the removed bottle to leave status", func() bool {
		for _, b := range status(t, c.admin).Bottles {
			if b.Name == "c" {
				return false
			}
		}
		return true
	})
	eventually(t, propagation, "the withdrawal to be logged", func() bool {
		return strings.Contains(c.stderr.String(), "bottle withdrawn")
	})
}
