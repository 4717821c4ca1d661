package xds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/egressgate/egressgate/config"
)

// TestInputNeverPrintsItsSecrets: an Input in a log line, an error or a
// test failure shows no private key, caller key or audit key, however
// it is printed.
func TestInputNeverPrintsItsSecrets(t *testing.T) {
	const leafKey, callerKey, auditKey = "LEAF-PRIVATE-KEY-7f3a", "caller-key-5d1e", "audit-key-9c2b"
	in := Input{
		Leaves:     map[string]Certificate{"api.example": {CertPEM: []byte("CERT"), KeyPEM: []byte(leafKey)}},
		ExtProcKey: config.NewSecret(callerKey),
		AuditKey:   config.NewSecret(auditKey),
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("translating", "input", in, "leaf", in.Leaves["api.example"])
	marshalled, err := json.Marshal(in)
	require.NoError(t, err)
	for _, out := range []string{
		fmt.Sprintf("%v", in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in), fmt.Sprintf("%s", in.Leaves),
		fmt.Sprintf("%x", in.Leaves["api.example"]), string(marshalled), logged.String(),
	} {
		for _, secret := range []string{leafKey, callerKey, auditKey} {
			assert.NotContains(t, out, secret)
		}
	}
}
