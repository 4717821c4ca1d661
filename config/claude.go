package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// claudeFix is the remedy for every problem with the host's Claude Code
// login: log in again on the host.
const claudeFix = "log in to Claude Code on the host (run `claude`, then /login)"

const (
	claudeCredentialsFile = ".credentials.json"
	defaultClaudeSubdir   = ".claude"
)

// claudeCredentialsJSON is the part of Claude Code's .credentials.json
// egressgate reads: the OAuth access token and its expiry. The refresh
// token is not declared, so it is never copied out of the file's bytes.
type claudeCredentialsJSON struct {
	OAuth *struct {
		AccessToken string `json:"accessToken"`
		// ExpiresAt is in milliseconds since the epoch.
		ExpiresAt int64 `json:"expiresAt"`
	} `json:"claudeAiOauth"`
}

// claudeCredentials is where Claude Code keeps its login on Linux:
// $CLAUDE_CONFIG_DIR/.credentials.json, else ~/.claude/.credentials.json,
// made absolute because the path is shown in status and errors.
func (l *loader) claudeCredentials() (string, bool) {
	dir, ok := l.cliHome("", "CLAUDE_CONFIG_DIR", defaultClaudeSubdir,
		"cannot find Claude Code's login: set CLAUDE_CONFIG_DIR or HOME, or name a host variable in auth_token")
	return filepath.Join(dir, claudeCredentialsFile), ok
}

// readClaudeLogin reads the OAuth access token of the host's Claude Code
// login at path. Problems name the file and the fix, and quote nothing of
// it.
func (l *loader) readClaudeLogin(path string) hostLogin {
	c := hostLogin{path: path, fix: claudeFix}
	fail := c.failed
	data, failed := l.readLoginFile(c)
	if failed != nil {
		return *failed
	}
	var f claudeCredentialsJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return fail("is not Claude Code's credentials file")
	}
	switch {
	case f.OAuth == nil:
		return fail("holds no Claude login (claudeAiOauth)")
	case f.OAuth.AccessToken == "":
		return fail("holds no claudeAiOauth.accessToken")
	case !isVisibleASCII(f.OAuth.AccessToken):
		return fail("claudeAiOauth.accessToken is not a token")
	}
	c.value = NewSecret(f.OAuth.AccessToken)
	if f.OAuth.ExpiresAt > 0 {
		c.expiry = time.UnixMilli(f.OAuth.ExpiresAt).UTC()
	}
	return c
}

// hostLogin is what reading a host login file (Codex's auth.json, Claude
// Code's credentials) found.
type hostLogin struct {
	path   string
	fix    string
	value  Secret
	expiry time.Time
	// problem, when set, is why the file holds no usable login: one line
	// naming the file, the problem and the fix, quoting nothing of it.
	problem string
}

// failed is c holding no login, for problem.
func (c hostLogin) failed(problem string) hostLogin {
	c.problem = c.problemText(problem)
	return c
}

func (c hostLogin) problemText(problem string) string {
	return fmt.Sprintf("%s: %s; %s", c.path, problem, c.fix)
}

// startupProblem is why the login cannot be used at now, where that is an
// error (start-up, validate, agent-env): a problem with the file, or a
// token already expired. A running egress instead keeps an expired token
// in its slot, and ext_proc refuses it by its expiry.
func (c hostLogin) startupProblem(now time.Time) string {
	switch {
	case c.problem != "":
		return c.problem
	case !c.expiry.IsZero() && !now.Before(c.expiry):
		return c.problemText("access token expired at " + c.expiry.Format(time.RFC3339))
	}
	return ""
}

// readLoginFile reads c's file, or returns c failed with why there is no
// login in it: a logged-out host has no file, or an empty one. A file
// egressgate may not read is a matter of permissions, not of logging in
// again, and says so.
func (l *loader) readLoginFile(c hostLogin) ([]byte, *hostLogin) {
	data, err := l.opts.ReadFile(c.path)
	var problem string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		problem = "not found"
	case errors.Is(err, fs.ErrPermission):
		c.fix = fmt.Sprintf("make it readable by the user egressgate runs as (uid %d), or run egressgate as the user who logged in", os.Getuid())
		problem = "cannot read: " + readProblem(err)
	case err != nil:
		problem = "cannot read: " + readProblem(err)
	case len(bytes.TrimSpace(data)) == 0:
		problem = "is empty"
	default:
		return data, nil
	}
	failed := c.failed(problem)
	return nil, &failed
}
