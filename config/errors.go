package config

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found while loading a manifest, placed at a line of
// the manifest file so that people and editors can jump straight to it.
type Error struct {
	File string
	// Line is 1-based; 0 means the problem concerns the file as a whole.
	Line int
	Msg  string
}

func (e Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors is every problem Load found in one manifest, in line order, so a
// person fixes a manifest in one pass rather than one error per run.
type Errors struct {
	List []Error
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As reach a single Error as well as the whole list.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, err := range e.List {
		errs[i] = err
	}
	return errs
}

// errList collects errors for one file while Load runs.
type errList struct {
	file string
	list []Error
}

func (l *errList) add(line int, format string, args ...any) {
	l.list = append(l.list, Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *errList) empty() bool { return len(l.list) == 0 }

// err returns the collected errors sorted by line, or nil. It returns a
// plain nil rather than a nil *Errors so callers' err != nil checks hold.
func (l *errList) err() error {
	if l.empty() {
		return nil
	}
	list := slices.Clone(l.list)
	slices.SortStableFunc(list, func(a, b Error) int { return a.Line - b.Line })
	return &Errors{List: list}
}
