package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// egressgateBin is the binary built once for the whole package.
var egressgateBin string

func TestMain(m *testing.M) {
	// A prebuilt egressgate (EGRESSGATE_BIN), to run the benchmarks
	// against another build in the same conditions.
	if bin := os.Getenv("EGRESSGATE_BIN"); bin != "" {
		egressgateBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "egressgate-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	egressgateBin = filepath.Join(dir, "egressgate")
	build := exec.Command("go", "build", "-o", egressgateBin, "../cmd/egressgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building egressgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
