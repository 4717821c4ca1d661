package agentenv

import (
	"slices"
	"strings"

	"github.com/egressgate/egressgate/canary"
	"github.com/egressgate/egressgate/config"
)

// awsCredentialsFile is the AWS shared credentials file holding the AWS
// canaries, by path under the output directory.
const awsCredentialsFile = "aws/credentials"

// awsDomains are the AWS API domains: a manifest routing a host in one of
// them means the agent talks to AWS through the egress, with an AWS
// configuration of its own that canaries must not replace.
var awsDomains = []string{"amazonaws.com", "amazonaws.com.cn", "api.aws"}

// addCanaries plants set's canaries (nil: none) where an agent, or a tool
// it runs, looks for credentials:
//
//   - AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and the same pair in an
//     AWS shared credentials file named by AWS_SHARED_CREDENTIALS_FILE,
//     unless the manifest routes AWS itself;
//   - GITHUB_TOKEN, unless the env file sets it already.
//
// What real clients do with them leaks nothing and breaks nothing: the AWS
// SDKs sign with the key pair into the Authorization header, gh and the
// GitHub libraries send the token in it, and the egress strips
// Authorization on every route (a route with a credential injects the
// host's instead). Only a canary in what the agent itself writes out, a
// request body, is a finding. set.Only keeps what was planted, for the
// state dir.
func (b *bundle) addCanaries(p *config.Policy, set *canary.Set, o Options) {
	if set == nil {
		b.stale = append(b.stale, awsCredentialsFile)
		return
	}
	var kinds, planted []string
	if host, ok := awsRoute(p); ok {
		b.stale = append(b.stale, awsCredentialsFile)
		b.notes = append(b.notes, "no AWS canaries: the manifest routes "+host+", so the agent's AWS configuration is left to it")
	} else {
		id, secret := set.Value(canary.AWSAccessKeyID).Reveal(), set.Value(canary.AWSSecretAccessKey).Reveal()
		b.files = append(b.files, file{name: awsCredentialsFile, data: awsCredentials(id, secret), mode: 0o600})
		b.env = append(b.env,
			envVar{"AWS_ACCESS_KEY_ID", id}, envVar{"AWS_SECRET_ACCESS_KEY", secret},
			envVar{"AWS_SHARED_CREDENTIALS_FILE", o.paths().aws})
		kinds = append(kinds, canary.AWSAccessKeyID, canary.AWSSecretAccessKey)
		planted = append(planted, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", awsCredentialsFile+" (AWS_SHARED_CREDENTIALS_FILE)")
	}
	if !b.hasEnv("GITHUB_TOKEN") {
		b.env = append(b.env, envVar{"GITHUB_TOKEN", set.Value(canary.GitHubToken).Reveal()})
		kinds = append(kinds, canary.GitHubToken)
		planted = append(planted, "GITHUB_TOKEN")
	}
	if len(kinds) == 0 {
		return
	}
	s := set.Only(kinds...)
	b.canaries = &s
	b.notes = append(b.notes, "canaries planted: "+strings.Join(planted, ", ")+
		": fake credentials, new on every run, that the egress watches for in what the agent sends (recorded in "+
		canary.Path(o.StateDir, p.Name)+"); --no-canaries leaves them out")
}

// awsCredentials is an AWS shared credentials file with one profile, as
// `aws configure` writes it.
func awsCredentials(id, secret string) []byte {
	return []byte("[default]\naws_access_key_id = " + id + "\naws_secret_access_key = " + secret + "\n")
}

// awsRoute returns the first route to an AWS API host, if any.
func awsRoute(p *config.Policy) (string, bool) {
	for _, r := range p.Routes {
		if slices.ContainsFunc(awsDomains, func(d string) bool { return r.Host == d || strings.HasSuffix(r.Host, "."+d) }) {
			return r.Host, true
		}
	}
	return "", false
}

func (b *bundle) hasEnv(key string) bool {
	return slices.ContainsFunc(b.env, func(v envVar) bool { return v.key == key })
}
