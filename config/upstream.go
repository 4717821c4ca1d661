package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strconv"
)

// upstream checks a route's upstream block and reads its CA file. A
// passthrough route's ca_file is already reported and is not read.
func (l *loader) upstream(path string, u *rawUpstream, passthrough bool) Upstream {
	if u == nil {
		return Upstream{}
	}
	out := Upstream{Address: u.Address}
	if u.Address != "" && !validAddress(u.Address) {
		l.errorf(path+".address", "%q is not host:port with a port from 1 to 65535", u.Address)
	}
	if u.CAFile != "" && !passthrough {
		out.CAFile, out.CAPEM = l.caFile(path+".ca_file", u.CAFile)
	}
	return out
}

func validAddress(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// caFile resolves name against the manifest's directory, so a manifest and
// its CA can move together, and returns the absolute path and contents.
func (l *loader) caFile(path, name string) (string, []byte) {
	abs := l.abs(name)
	data, err := l.opts.ReadFile(abs)
	if err != nil {
		l.errorf(path, "cannot read %s: %s", abs, readProblem(err))
		return abs, nil
	}
	if !hasCertificate(data) {
		l.errorf(path, "%s holds no PEM certificate", abs)
		return abs, nil
	}
	return abs, data
}

// abs resolves a file named in the manifest against the manifest's
// directory. The result is absolute because it is shown in status and
// errors, and watched for changes whatever the working directory.
func (l *loader) abs(name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name)
	}
	return filepath.Join(l.dir, name)
}

// hasCertificate reports whether data holds at least one PEM block that
// parses as an X.509 certificate; Envoy would reject the cluster otherwise,
// far from the manifest line that caused it.
func hasCertificate(data []byte) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err == nil {
			return true
		}
	}
}

// readProblem describes a failed read without repeating the path, which
// the caller has already put in its message.
func readProblem(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file"
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
