package config

import (
	"os"
	"path/filepath"
	"time"
)

// Options are the seams to the host: tests replace every one.
type Options struct {
	// ReadFile is the only way config reads files; default os.ReadFile.
	ReadFile func(path string) ([]byte, error)
	// LookupEnv reads the host environment; default os.LookupEnv.
	LookupEnv func(key string) (string, bool)
	// CodexHome is the --codex-home flag; "" means $CODEX_HOME, else
	// $HOME/.codex (both read through LookupEnv).
	CodexHome string
	// Now is the clock Codex token expiry is checked against; default
	// time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// loader holds what one Load needs; its methods validate and compile.
type loader struct {
	opts Options
	doc  *document
	errs *errList
	dir  string // absolute directory of the manifest, for ca_file
}

// Load reads the manifest at manifestPath and the host credentials it
// names, and compiles them into a Policy. On failure it returns *Errors
// listing every problem found, each at its line in the manifest.
func Load(manifestPath string, opts Options) (*Policy, error) {
	opts = opts.withDefaults()
	errs := &errList{file: manifestPath}
	data, err := opts.ReadFile(manifestPath)
	if err != nil {
		errs.add(0, "cannot read manifest: %s", readProblem(err))
		return nil, errs.err()
	}
	doc := parseManifest(manifestPath, data, errs)
	if doc == nil {
		return nil, errs.err()
	}
	dir, err := filepath.Abs(filepath.Dir(manifestPath))
	if err != nil {
		errs.add(0, "cannot resolve the manifest's directory: %v", err)
		return nil, errs.err()
	}
	l := &loader{opts: opts, doc: doc, errs: errs, dir: dir}
	p := l.compile(l.manifest())
	if err := errs.err(); err != nil {
		return nil, err
	}
	p.Manifest = manifestPath
	p.Inputs = inputs(absPath(manifestPath), p)
	return p, nil
}
