package hostlogin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"time"
)

// What Codex itself sends to refresh a ChatGPT login: the public client id
// of the Codex CLI and the OAuth refresh_token grant, as JSON.
const (
	TokenURL = "https://auth.openai.com/oauth/token"
	ClientID = "app_EMoamEEZ73f0CkXaXp7hrann"
	scope    = "openid profile email"
)

// requestTimeout bounds one refresh; the endpoint answers in well under a
// second when it is up.
const requestTimeout = 30 * time.Second

// Endpoint is the token endpoint and how to reach it.
type Endpoint struct {
	URL    string
	Client *http.Client
}

// NewEndpoint is the token endpoint at TokenURL. dialAddress, when set,
// is where to connect instead of the URL's host (the manifest's
// upstream.address for auth.openai.com: tests and private mirrors), and
// caPEM, when set, the only CA trusted for it (upstream.ca_file).
//
// The client uses no proxy, whatever the host's environment says: an
// HTTPS_PROXY pointing at the bottle's own egress would have the egress
// answer the refresh with placeholders, and those would land in the
// host's auth.json.
func NewEndpoint(dialAddress string, caPEM []byte) (Endpoint, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return Endpoint{}, errors.New("token endpoint: the CA file holds no certificate")
		}
		tlsConfig.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     tlsConfig,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dialAddress != "" {
				addr = dialAddress
			}
			return dialer.DialContext(ctx, network, addr)
		},
	}
	return Endpoint{URL: TokenURL, Client: &http.Client{
		Transport: transport,
		Timeout:   requestTimeout,
		// A redirect would re-send the refresh token to wherever it
		// points; the token goes to the token endpoint or nowhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// tokenAnswer is what the endpoint answers a refresh with.
type tokenAnswer struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// RefreshError is a refresh the endpoint did not grant.
type RefreshError struct {
	// Status is the HTTP status; 0 when no answer came.
	Status int
	// Code is the OAuth error code the endpoint gave, e.g.
	// "refresh_token_reused" or "invalid_grant"; "" when none.
	Code string
	// Permanent is an answer that will not change by asking again: the
	// refresh token is refused, and only a new login on the host helps.
	Permanent bool
	detail    string
}

func (e *RefreshError) Error() string {
	switch {
	case e.Status == 0:
		return "the token endpoint could not be reached: " + e.detail
	case e.Permanent && e.Code != "":
		return fmt.Sprintf("the token endpoint refused the refresh token with %d (%s)", e.Status, e.Code)
	case e.Permanent:
		return fmt.Sprintf("the token endpoint refused the refresh token with %d", e.Status)
	case e.Code != "":
		return fmt.Sprintf("the token endpoint answered %d (%s)", e.Status, e.Code)
	default:
		return fmt.Sprintf("the token endpoint answered %d%s", e.Status, e.detail)
	}
}

// Reused is the refresh token having been used already: someone else (the
// host's Codex, another egressgate) refreshed the login first.
func (e *RefreshError) Reused() bool { return e.Code == "refresh_token_reused" }

// refresh asks the endpoint for new tokens. Its errors never quote the
// request or the answer's body beyond an OAuth error code.
func (e Endpoint) refresh(ctx context.Context, refreshToken string) (tokenAnswer, error) {
	body, err := json.Marshal(map[string]string{
		"client_id": ClientID, "grant_type": "refresh_token", "refresh_token": refreshToken, "scope": scope,
	})
	if err != nil {
		return tokenAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return tokenAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := e.Client.Do(req)
	if err != nil {
		return tokenAnswer{}, &RefreshError{detail: transportProblem(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return tokenAnswer{}, &RefreshError{detail: "reading the answer failed"}
	}
	if resp.StatusCode != http.StatusOK {
		return tokenAnswer{}, refusal(resp.StatusCode, data)
	}
	var t tokenAnswer
	if err := json.Unmarshal(data, &t); err != nil || t.AccessToken == "" {
		return tokenAnswer{}, &RefreshError{Status: resp.StatusCode, detail: " without an access token"}
	}
	if _, problem := readAccessToken(t.AccessToken); problem != "" {
		return tokenAnswer{}, &RefreshError{Status: resp.StatusCode, detail: " with an unusable token: " + problem}
	}
	return t, nil
}

// oauthCode accepts what an OAuth error code looks like, so nothing else
// from the body (which could echo a token) reaches a log line.
var oauthCode = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// refusal reads the error code from either shape the endpoint uses:
// {"error": "invalid_grant"} or {"error": {"code": "refresh_token_reused"}}.
// 400 and 401 are answers about the refresh token itself; anything else
// (429, 5xx, a proxy's 403) may pass.
func refusal(status int, body []byte) *RefreshError {
	var shape struct {
		Error json.RawMessage `json:"error"`
		Code  string          `json:"code"`
	}
	_ = json.Unmarshal(body, &shape)
	var code string
	var nested struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(shape.Error, &code) != nil && json.Unmarshal(shape.Error, &nested) == nil {
		code = nested.Code
	}
	if code == "" {
		code = shape.Code
	}
	if !oauthCode.MatchString(code) {
		code = ""
	}
	return &RefreshError{Status: status, Code: code, Permanent: status == http.StatusBadRequest || status == http.StatusUnauthorized}
}

func transportProblem(err error) string {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timed out"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Op + " failed"
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return "its certificate is not trusted"
	}
	return "connection failed"
}
