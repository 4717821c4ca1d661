package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// document is a decoded manifest: the raw values, and where in the file
// each YAML path appeared, so semantic checks can point at a line.
//
// Paths look like "egress.routes[1].auth.token_ref"; "" is the top level.
type document struct {
	raw rawManifest
	// lines maps each path present in the file to the line of its key (or
	// of its "-" for a list item): the line a person looks at to fix it.
	lines map[string]int
	// bad holds paths whose value had the wrong type. Their field keeps its
	// zero value; checks skip them so one mistake is reported once.
	bad map[string]bool
}

// line returns the line of path, or of its nearest ancestor present in
// the file (a missing key is reported where its parent is), or 0.
func (d *document) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// isBad reports whether path, or a value holding it, had the wrong type:
// anything under it is missing because of that one reported mistake.
func (d *document) isBad(path string) bool {
	for {
		if d.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// decodeDocument decodes the node tree into rawManifest by walking it
// itself instead of using yaml's decoder: that gives every error the
// manifest path and its own line, reports unknown and duplicate keys in
// every mapping, and collects all of them rather than stopping.
func decodeDocument(root *yaml.Node, errs *errList) *document {
	doc := &document{lines: map[string]int{}, bad: map[string]bool{}}
	if root == nil {
		return doc
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if isNull(root) {
		// Front matter with nothing in it: "name: required" belongs to the
		// file, not to whatever line the empty document ended on.
		return doc
	}
	d := nodeDecoder{doc: doc, errs: errs}
	d.decode("", root.Line, root, reflect.ValueOf(&doc.raw).Elem())
	return doc
}

type nodeDecoder struct {
	doc  *document
	errs *errList
}

func (d *nodeDecoder) decode(path string, line int, n *yaml.Node, v reflect.Value) {
	d.doc.lines[path] = line
	switch {
	case n.Kind == yaml.AliasNode:
		// Refused rather than followed: this walk has none of yaml's guards
		// against alias bombs, and a manifest is short enough to spell out.
		d.doc.bad[path] = true
		d.errs.add(n.Line, "%saliases (*%s) are not supported; write the value out", pathPrefix(path), n.Value)
	case isNull(n):
		// An empty value ("auth:" with nothing after it) means the same as
		// leaving the key out.
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.decode(path, line, n, v.Elem())
		if d.doc.bad[path] {
			// "auth: Bearer" must not also read as an empty auth block.
			v.SetZero()
		}
	default:
		if want := d.value(path, n, v); want != "" {
			d.doc.bad[path] = true
			d.errs.add(n.Line, "%swant %s, got %s", pathPrefix(path), want, describe(n))
		}
	}
}

// value decodes n into v, or returns what v wanted instead of n.
func (d *nodeDecoder) value(path string, n *yaml.Node, v reflect.Value) (want string) {
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return "a mapping"
		}
		d.mapping(path, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return "a list"
		}
		d.sequence(path, n, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return "a string"
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			return "true or false"
		}
		v.SetBool(b)
	case reflect.Int64:
		// Only a plain YAML integer: "8388608" in quotes, 8MiB or 1e6
		// would each need a guess at what was meant.
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			return "a whole number"
		}
		v.SetInt(i)
	default:
		// Unreachable: the raw* types use only the kinds above.
		panic(fmt.Sprintf("config: raw manifest field of kind %s", v.Kind()))
	}
	return ""
}

func (d *nodeDecoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	keys := yamlKeys(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			d.errs.add(k.Line, "%s: duplicate key (first at line %d)", joinPath(path, k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		field := slices.Index(keys, k.Value)
		if field < 0 {
			near := nearest(k.Value, keys)
			if near == "" {
				d.errs.add(k.Line, "%sunknown key %q; allowed: %s", pathPrefix(path), k.Value, strings.Join(keys, ", "))
				continue
			}
			d.errs.add(k.Line, "%sunknown key %q; did you mean %s? allowed: %s", pathPrefix(path), k.Value, near, strings.Join(keys, ", "))
			// The key meant is as good as given wrongly: that it is then
			// missing is not a second mistake to report.
			d.doc.bad[joinPath(path, near)] = true
			continue
		}
		d.decode(joinPath(path, k.Value), k.Line, val, v.Field(field))
	}
}

func (d *nodeDecoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
	for i, item := range n.Content {
		d.decode(fmt.Sprintf("%s[%d]", path, i), item.Line, item, v.Index(i))
	}
}

// yamlKeys lists a struct's yaml keys in field order; the order doubles as
// the "allowed:" hint in errors.
func yamlKeys(t reflect.Type) []string {
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i], _, _ = strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
	}
	return keys
}

// describe names what a node holds, for "want X, got Y" errors. Scalars are
// named by type, not quoted, so a misplaced value never lands in an error.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!bool":
		return "a boolean"
	case "!!int", "!!float":
		return "a number"
	default:
		return "a string"
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pathPrefix is path as the start of an error message.
func pathPrefix(path string) string {
	if path == "" {
		return "top level: "
	}
	return path + ": "
}

// nearest is the allowed key a misspelt one most likely meant: one within
// a couple of edits ("token-ref", "tokenref", "token_rfe"), or one it is a
// start of ("forward"); "" when none is close.
func nearest(key string, allowed []string) string {
	best, bestDist := "", 3
	k := strings.ToLower(key)
	for _, a := range allowed {
		d := editDistance(k, a)
		if len(k) >= 4 && strings.HasPrefix(a, k) {
			d = min(d, 2)
		}
		if d < bestDist {
			best, bestDist = a, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, for the short
// keys of a manifest.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
