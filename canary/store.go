package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/egressgate/egressgate/config"
	"github.com/egressgate/egressgate/dlp"
	"github.com/egressgate/egressgate/internal/securefile"
)

const (
	// FileName is the canary file in a bottle's directory of the state
	// dir: STATE_DIR/<bottle>/canaries.json.
	FileName = "canaries.json"
	// Keep is how many runs' sets the file keeps. An agent started by an
	// older run still holds its canaries, so they stay watched for until
	// that many runs have come after it.
	Keep = 8

	fileVersion = 1
)

// file is canaries.json. Values are plain strings here, and only here:
// this is the one place they are written out.
//
//	{"version": 1, "runs": [{"run": "9f2c4e1a7b3d5f60", "created": "2026-11-28T09:00:00Z",
//	  "canaries": {"aws-access-key-id": "AKIA…", "github-token": "ghp_…"}}]}
type file struct {
	Version int       `json:"version"`
	Runs    []fileRun `json:"runs"` // in the order recorded, oldest first
}

type fileRun struct {
	Run      string            `json:"run"`
	Created  time.Time         `json:"created"`
	Canaries map[string]string `json:"canaries"`
}

// Path is the canary file of bottle in stateDir.
func Path(stateDir, bottle string) string {
	return filepath.Join(stateDir, bottle, FileName)
}

// Record adds s to bottle's canary file, keeping the sets of the last Keep
// runs recorded, oldest first. The file is replaced atomically with mode 0600, under a
// lock on the bottle's directory, so concurrent agent-env runs each add
// their set. An existing file that does not load is an error: replacing it
// would drop the canaries earlier runs planted.
func Record(stateDir, bottle string, s Set) error {
	if err := checkBottle(bottle); err != nil {
		return err
	}
	if err := checkSet(s); err != nil {
		return fmt.Errorf("canaries for bottle %s: %w", bottle, err)
	}
	dir := filepath.Join(stateDir, bottle)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("canaries: %w", err)
	}
	unlock, err := securefile.LockDir(dir)
	if err != nil {
		return fmt.Errorf("canaries: %w", err)
	}
	defer unlock()
	path := Path(stateDir, bottle)
	f, err := read(path)
	if err != nil {
		return fmt.Errorf("%w; move it aside to start a new one (the canaries it holds are then no longer watched for)", err)
	}
	if f == nil {
		f = &file{Version: fileVersion}
	}
	run := fileRun{Run: s.Run, Created: s.Created.UTC(), Canaries: map[string]string{}}
	for k, v := range s.Values {
		run.Canaries[k] = v.Reveal()
	}
	// Kept in the order recorded, not by creation time: a clock set back
	// must not make the run being planted the oldest, and so dropped.
	f.Runs = append(f.Runs, run)
	f.Runs = f.Runs[max(0, len(f.Runs)-Keep):]
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("canaries: %w", err)
	}
	if err := securefile.WriteAtomic(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("canaries: %w", err)
	}
	return nil
}

// Load returns the canaries in bottle's canary file, the oldest run's
// first, named "<kind>@<run>" with the run id cut to 8 digits (whole when
// two runs share those). A missing file is no canaries and no error; a
// file that does not load is an error naming it, never quoting a value.
func Load(stateDir, bottle string) ([]dlp.Named, error) {
	if err := checkBottle(bottle); err != nil {
		return nil, err
	}
	f, err := read(Path(stateDir, bottle))
	if err != nil || f == nil {
		return nil, err
	}
	short := map[string]int{}
	for _, r := range f.Runs {
		short[shortRun(r.Run)]++
	}
	var out []dlp.Named
	for _, r := range f.Runs {
		id := shortRun(r.Run)
		if short[id] > 1 {
			id = r.Run
		}
		for _, k := range slices.Sorted(maps.Keys(r.Canaries)) {
			out = append(out, dlp.Named{Name: k + "@" + id, Value: config.NewSecret(r.Canaries[k])})
		}
	}
	return out, nil
}

// Runs returns the sets in bottle's canary file, oldest first; nil for a
// missing file.
func Runs(stateDir, bottle string) ([]Set, error) {
	if err := checkBottle(bottle); err != nil {
		return nil, err
	}
	f, err := read(Path(stateDir, bottle))
	if err != nil || f == nil {
		return nil, err
	}
	out := make([]Set, 0, len(f.Runs))
	for _, r := range f.Runs {
		s := Set{Run: r.Run, Created: r.Created, Values: map[string]config.Secret{}}
		for k, v := range r.Canaries {
			s.Values[k] = config.NewSecret(v)
		}
		out = append(out, s)
	}
	return out, nil
}

func shortRun(run string) string { return run[:min(len(run), 8)] }

// read loads and checks the file at path; nil, nil when there is none.
// The file must be private (0600): its values are what an agent must not
// learn are fake.
func read(path string) (*file, error) {
	data, err := securefile.ReadPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("canaries: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("canaries: %s is corrupt: %s", path, jsonProblem(err))
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("canaries: %s is corrupt: %w", path, err)
	}
	return &f, nil
}

// jsonProblem describes a decoding error by position, field and type
// only: some of encoding/json's errors (a time that does not parse) quote
// the text they read, which may be a value.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s is not a %s", typ.Field, typ.Type)
	default:
		return "a field does not parse (a creation time is RFC 3339)"
	}
}

var (
	runPattern  = regexp.MustCompile(`^[0-9a-z]{8,64}$`)
	kindPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// check reports the first problem of f, naming runs and kinds, never a
// value.
func (f *file) check() error {
	if f.Version != fileVersion {
		return fmt.Errorf("version %d, want %d", f.Version, fileVersion)
	}
	seen := map[string]bool{}
	for i, r := range f.Runs {
		if !runPattern.MatchString(r.Run) {
			return fmt.Errorf("run %d: run id is not 8 to 64 lower-case letters and digits", i)
		}
		if seen[r.Run] {
			return fmt.Errorf("run %s appears twice", r.Run)
		}
		seen[r.Run] = true
		if r.Created.IsZero() {
			return fmt.Errorf("run %s: no creation time", r.Run)
		}
		if len(r.Canaries) == 0 {
			return fmt.Errorf("run %s: no canaries", r.Run)
		}
		for k, v := range r.Canaries {
			if err := checkCanary(k, v); err != nil {
				return fmt.Errorf("run %s: %w", r.Run, err)
			}
		}
	}
	return nil
}

func checkSet(s Set) error {
	if !runPattern.MatchString(s.Run) {
		return errors.New("run id is not 8 to 64 lower-case letters and digits")
	}
	if s.Created.IsZero() {
		return errors.New("no creation time")
	}
	if len(s.Values) == 0 {
		return errors.New("no canaries")
	}
	for k, v := range s.Values {
		if err := checkCanary(k, v.Reveal()); err != nil {
			return err
		}
	}
	return nil
}

// checkCanary refuses a value dlp would refuse, and a kind that could not
// be told apart in a canary's name.
func checkCanary(kind, value string) error {
	if !kindPattern.MatchString(kind) {
		// Not quoted: in a damaged file a value may sit where a kind goes.
		return errors.New("a canary kind is not lower-case words joined by '-'")
	}
	if len(value) < dlp.MinLiteralLen {
		return fmt.Errorf("%s is shorter than %d bytes", kind, dlp.MinLiteralLen)
	}
	return nil
}

// checkBottle keeps a bottle name to one directory of the state dir.
// config's names ([a-z0-9-]+) always pass.
func checkBottle(bottle string) error {
	if bottle == "" || bottle == "." || bottle == ".." || strings.ContainsAny(bottle, `/\`) {
		return fmt.Errorf("canaries: %q is not a bottle name", bottle)
	}
	return nil
}
