package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"with line", Error{File: "m.md", Line: 4, Msg: "name: required"}, "m.md:4: name: required"},
		{"whole file", Error{File: "m.md", Msg: "cannot read manifest: no such file"}, "m.md: cannot read manifest: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorsSortedJoinedAndUnwrappable(t *testing.T) {
	l := &errList{file: "m.md"}
	l.add(9, "b")
	l.add(0, "whole")
	l.add(3, "a")
	err := l.err()

	require.Equal(t, "m.md: whole\nm.md:3: a\nm.md:9: b", err.Error())
	var list *Errors
	require.True(t, errors.As(err, &list))
	require.Len(t, list.List, 3)
	var one Error
	require.True(t, errors.As(err, &one), "errors.As reaches a single Error")
	require.Equal(t, "whole", one.Msg)
}

func TestNoErrorsIsNil(t *testing.T) {
	l := &errList{file: "m.md"}
	require.NoError(t, l.err())
}
