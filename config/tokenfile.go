package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"unicode"
)

// tokenShapes are how common credentials begin (GitHub, GitLab, OpenAI and
// Anthropic, Slack, JWTs). A token_file starting with one is almost surely
// the token pasted where its file's name belongs.
var tokenShapes = []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "sk-", "xoxb-", "xoxp-", "eyJ"}

// authSource returns the credential source an auth block names, and the
// key naming it. Exactly one of token_ref (a host environment variable)
// and token_file (a host file) is allowed: with both, which one wins would
// be a guess.
func (l *loader) authSource(path string, a *rawAuth) (Source, string) {
	refPath, filePath := path+".token_ref", path+".token_file"
	switch {
	case a.TokenRef != "" && a.TokenFile != "":
		l.errorf(filePath, "set token_ref or token_file, not both")
	case a.TokenFile != "":
		return l.tokenFile(filePath, a.TokenFile), filePath
	case a.TokenRef != "":
		l.envName(refPath, a.TokenRef)
	case !l.doc.isBad(refPath) && !l.doc.isBad(filePath):
		l.errorf(path, "set token_ref (a host environment variable) or token_file (a file on the host holding the token)")
	}
	return Source{Kind: SourceEnv, Ref: a.TokenRef}, refPath
}

// tokenFile checks a token_file value and resolves it against the
// manifest's directory, like upstream.ca_file. Its problems never echo the
// value: the path is shown in status and logs, so a token pasted in
// its place must be refused before it gets there.
func (l *loader) tokenFile(path, name string) Source {
	switch {
	case strings.ContainsFunc(name, unicode.IsControl):
		l.errorf(path, "must be a file path without control characters")
	case looksLikeToken(name):
		l.errorf(path, "looks like a token, not a file name: put the token in a file and name that file here")
	}
	return Source{Kind: SourceFile, Ref: l.abs(name)}
}

func looksLikeToken(name string) bool {
	for _, s := range []string{name, filepath.Base(name)} {
		for _, shape := range tokenShapes {
			if strings.HasPrefix(s, shape) {
				return true
			}
		}
	}
	return false
}

// readTokenFile returns the token held in file, without the whitespace
// around it (editors and `echo` end files with a newline). Errors are
// reported at path and never quote the file's contents.
func (l *loader) readTokenFile(path, file string) Secret {
	data, err := l.opts.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Like an unset variable, not an error: the slot stays empty and
		// ext_proc refuses its routes naming Source.AgentFix(); the file is
		// among Policy.Inputs, so writing it triggers a reload.
		return Secret{}
	case err != nil:
		l.errorf(path, "cannot read %s: %s", file, readProblem(err))
		return Secret{}
	}
	token := strings.TrimSpace(string(data))
	if !isVisibleASCII(token) {
		// The value goes into an Authorization header: a line break there
		// would let the file's contents add headers of their own.
		l.errorf(path, "%s must hold only the token: one line of printable ASCII without spaces", file)
		return Secret{}
	}
	return NewSecret(token)
}

// isVisibleASCII reports whether s holds only printable ASCII other than
// space: every token scheme we inject (RFC 6750 b64token, GitHub's) fits.
func isVisibleASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '!' || r > '~' })
}
