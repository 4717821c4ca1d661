package config

import (
	"fmt"
	"log/slog"
)

const redacted = "<redacted>"

// Secret holds a credential value. Every way Go has of printing,
// marshalling or logging it yields a redaction; only Reveal returns the
// value, and only the code that puts it on the wire calls Reveal.
type Secret struct{ value string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the credential value.
func (s Secret) Reveal() string { return s.value }

// Empty reports whether the secret holds no value.
func (s Secret) Empty() bool { return s.value == "" }

func (s Secret) String() string                { return redacted }
func (s Secret) GoString() string              { return redacted }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (s Secret) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (s Secret) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }
