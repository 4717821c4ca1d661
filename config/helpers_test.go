package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"maps"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// testNow is the clock every test runs at.
var testNow = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

const (
	testManifest  = "/bottle/demo.yaml"
	testCodexHome = "/home/u/.codex"
	testAuthJSON  = "/home/u/.codex/auth.json"
	// testRefresh is the refresh token in every generated auth.json; no
	// output of config may ever contain it.
	testRefresh = "rt-REFRESH-never-leaves-the-parser"
)

// fakeHost is the host as Load sees it through Options: files and
// environment variables held in maps, and a log of the files opened.
type fakeHost struct {
	files  map[string]string
	env    map[string]string
	opened []string
	// fail makes reading a path fail with the given error.
	fail map[string]error
	// onRead, when set, is told of every read before it happens.
	onRead func(path string)
}

func newHost(manifest string) *fakeHost {
	return &fakeHost{
		files: map[string]string{testManifest: manifest},
		env:   map[string]string{},
	}
}

func (h *fakeHost) options() Options {
	return Options{
		ReadFile: func(path string) ([]byte, error) {
			if h.onRead != nil {
				h.onRead(path)
			}
			h.opened = append(h.opened, path)
			if err := h.fail[path]; err != nil {
				return nil, err
			}
			s, ok := h.files[path]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
			}
			return []byte(s), nil
		},
		LookupEnv: func(key string) (string, bool) {
			v, ok := h.env[key]
			return v, ok
		},
		CodexHome: testCodexHome,
		Now:       func() time.Time { return testNow },
	}
}

func (h *fakeHost) load() (*Policy, error) { return Load(testManifest, h.options()) }

// mustLoad loads the manifest and fails the test on any error.
func (h *fakeHost) mustLoad(t *testing.T) *Policy {
	t.Helper()
	p, err := h.load()
	require.NoError(t, err)
	return p
}

// loadErrors loads the manifest, requires it to fail with *Errors and
// returns the error's lines.
func (h *fakeHost) loadErrors(t *testing.T) []string {
	t.Helper()
	p, err := h.load()
	if err == nil {
		// A host login problem is not a load error but a start-up one.
		err = p.HostLoginError()
		p = nil
	}
	require.Error(t, err)
	require.Nil(t, p)
	var errs *Errors
	require.True(t, errors.As(err, &errs), "error is %T, want *Errors", err)
	return splitLines(err.Error())
}

// routes builds a plain YAML manifest whose routes start on line 4.
func routes(yaml string) string {
	return "name: demo\negress:\n  routes:\n" + yaml
}

// accessToken is a ChatGPT-style access token signed with a throwaway
// key, expiring at exp; extra claims are merged over the defaults (a nil
// value deletes a claim).
func accessToken(t *testing.T, exp time.Time, extra jwt.MapClaims) string {
	t.Helper()
	claims := jwt.MapClaims{
		"exp":            exp.Unix(),
		chatgptAuthClaim: map[string]any{"chatgpt_account_id": "acct-0001"},
	}
	maps.Copy(claims, extra)
	maps.DeleteFunc(claims, func(_ string, v any) bool { return v == nil })
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("throwaway test key"))
	require.NoError(t, err)
	return s
}

// authJSON is a Codex auth.json in ChatGPT mode holding access.
func authJSON(t *testing.T, access string) string {
	t.Helper()
	return marshal(t, map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token":      accessToken(t, testNow.Add(time.Hour), nil),
			"access_token":  access,
			"refresh_token": testRefresh,
			"account_id":    "acct-0001",
		},
		"last_refresh": testNow.Add(-time.Hour).Format(time.RFC3339),
	})
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// testCAPEM is a freshly minted self-signed CA certificate in PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "egressgate test CA"},
		NotBefore:             testNow.Add(-time.Hour),
		NotAfter:              testNow.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// bottleFile is a path next to the test manifest.
func bottleFile(name string) string { return filepath.Join(filepath.Dir(testManifest), name) }

func splitLines(s string) []string { return strings.Split(s, "\n") }
