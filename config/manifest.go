package config

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The raw* types mirror the manifest's YAML shape. Their yaml tags are the
// complete list of keys a manifest may use: decode rejects any other key.
type rawManifest struct {
	Name          string      `yaml:"name"`
	AgentProvider rawProvider `yaml:"agent_provider"`
	DLP           *rawDLP     `yaml:"dlp"`
	Egress        rawEgress   `yaml:"egress"`
}

type rawProvider struct {
	Template               string `yaml:"template"`
	ForwardHostCredentials bool   `yaml:"forward_host_credentials"`
	RefreshHostCredentials bool   `yaml:"refresh_host_credentials"`
	AuthToken              string `yaml:"auth_token"`
}

type rawEgress struct {
	Routes []rawRoute `yaml:"routes"`
}

type rawRoute struct {
	Host     string       `yaml:"host"`
	TLS      string       `yaml:"tls"`
	Auth     *rawAuth     `yaml:"auth"`
	Matches  []rawMatch   `yaml:"matches"`
	Upstream *rawUpstream `yaml:"upstream"`
	DLP      *rawRouteDLP `yaml:"dlp"`
}

type rawAuth struct {
	Scheme    string `yaml:"scheme"`
	Header    string `yaml:"header"`
	TokenRef  string `yaml:"token_ref"`
	TokenFile string `yaml:"token_file"`
}

type rawMatch struct {
	Paths   []rawPath `yaml:"paths"`
	Methods []string  `yaml:"methods"`
}

type rawPath struct {
	Type  string `yaml:"type"`
	Value string `yaml:"value"`
}

type rawUpstream struct {
	Address string `yaml:"address"`
	CAFile  string `yaml:"ca_file"`
}

// rawDLP is the bottle's dlp block: the setting every intercepted route
// starts from, and the rules that apply to all of them.
type rawDLP struct {
	Mode         string          `yaml:"mode"`
	LargeBody    string          `yaml:"large_body"`
	MaxBodyBytes *int64          `yaml:"max_body_bytes"`
	Patterns     []rawDLPPattern `yaml:"patterns"`
	Allow        []string        `yaml:"allow"`
}

// rawRouteDLP is a route's dlp block: it overrides the bottle's setting,
// never its rules.
type rawRouteDLP struct {
	Mode         string `yaml:"mode"`
	LargeBody    string `yaml:"large_body"`
	MaxBodyBytes *int64 `yaml:"max_body_bytes"`
}

type rawDLPPattern struct {
	Name    string `yaml:"name"`
	Literal string `yaml:"literal"`
	Regex   string `yaml:"regex"`
}

// parseManifest turns a manifest file's bytes into a document. It returns
// nil when the file is not YAML at all; shape errors (unknown keys, wrong
// types) are recorded in errs and still yield a document, so validation
// can report the remaining problems in the same run.
func parseManifest(file string, data []byte, errs *errList) *document {
	src, ok := yamlSource(file, data, errs)
	if !ok {
		return nil
	}
	root, ok := parseYAML(src, errs)
	if !ok {
		return nil
	}
	return decodeDocument(root, errs)
}

// yamlSource returns the YAML part of a manifest: the front matter of a
// Markdown file, or the whole file. The front matter keeps its opening
// "---" line, which YAML reads as a document start marker; so YAML's line
// numbers are already the file's line numbers, with no offset to add.
func yamlSource(file string, data []byte, errs *errList) ([]byte, bool) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	lines := bytes.SplitAfter(data, []byte("\n"))
	ext := strings.ToLower(filepath.Ext(file))
	yamlFile := ext == ".yaml" || ext == ".yml"
	if isFence(lines[0]) {
		for i := 1; i < len(lines); i++ {
			if !isFence(lines[i]) {
				continue
			}
			// A .yaml file fenced like front matter may have a body for
			// people too; but manifest keys after its second --- are a
			// second YAML document, and dropping them silently would
			// lose routes.
			if !yamlFile || !holdsManifestKeys(lines[i+1:]) {
				return bytes.Join(lines[:i], nil), true
			}
			break
		}
	}
	// A Markdown body parsed as YAML would yield baffling errors; say what
	// is missing instead.
	switch ext {
	case ".md", ".markdown":
		if isFence(lines[0]) {
			errs.add(1, "front matter is not closed: add a --- line after the YAML")
		} else {
			errs.add(1, "no YAML front matter: a Markdown manifest starts with a --- line, then YAML, then a --- line")
		}
		return nil, false
	}
	return data, true
}

// holdsManifestKeys reports whether lines start a top-level manifest key.
func holdsManifestKeys(lines [][]byte) bool {
	for _, l := range lines {
		for _, key := range []string{"name:", "agent_provider:", "dlp:", "egress:"} {
			if bytes.HasPrefix(l, []byte(key)) {
				return true
			}
		}
	}
	return false
}

func isFence(line []byte) bool {
	return string(bytes.TrimRight(line, " \t\r\n")) == "---"
}

// parseYAML parses exactly one YAML document. An empty file yields a nil
// node and no error: validation then reports what is missing.
func parseYAML(src []byte, errs *errList) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		addYAMLError(errs, err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &root, true
	case err != nil:
		addYAMLError(errs, err)
	default:
		errs.add(next.Line, "a manifest is one YAML document; remove the second one")
	}
	return nil, false
}

// yamlLineError matches yaml.v3's syntax errors, which carry their line
// only inside the message text.
var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// collectionErrors are yaml.v3's errors about a collection, which it
// places at the collection's first line, with what to look for.
var collectionErrors = map[string]string{
	"did not find expected ',' or '}'":    "a { opened here is not closed",
	"did not find expected ',' or ']'":    "a [ opened here is not closed",
	"did not find expected key":           "a line of the mapping that starts here is not indented like the others",
	"did not find expected '-' indicator": "a line of the list that starts here is not indented like the others",
}

func addYAMLError(errs *errList, err error) {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 reports the errors it finds inside a collection at the
		// collection's start counted from 0, the others counted from 1:
		// an unclosed "{" on line 5 comes as line 4.
		if hint, ok := collectionErrors[m[2]]; ok {
			errs.add(line+1, "invalid YAML: %s (%s)", m[2], hint)
			return
		}
		errs.add(line, "invalid YAML: %s", m[2])
		return
	}
	errs.add(0, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}
