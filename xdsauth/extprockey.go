package xdsauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// ExtProcKey derives the key a bottle's Envoy presents to its ext_proc
// server from the bottle's xDS token. Both ends hold the token (the control
// plane minted it; the sidecar reads its token file), so they agree on the
// key across control-plane restarts without another secret to distribute.
func ExtProcKey(token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("egressgate ext_proc caller key v1"))
	return hex.EncodeToString(mac.Sum(nil))
}
