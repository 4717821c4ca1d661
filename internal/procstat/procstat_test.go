package procstat

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOwnProcess(t *testing.T) {
	// Burn a little CPU so the reading cannot be zero.
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	cpu, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, cpu)

	m, err := ReadMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.RSS)
	assert.GreaterOrEqual(t, m.HWM, m.RSS)
}

func TestChildPIDs(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	assert.Contains(t, ChildPIDs(os.Getpid()), cmd.Process.Pid)
}

func TestMissingProcess(t *testing.T) {
	_, err := CPUTime(-1)
	assert.Error(t, err)
	_, err = ReadMemory(-1)
	assert.Error(t, err)
	assert.Empty(t, ChildPIDs(-1))
}
