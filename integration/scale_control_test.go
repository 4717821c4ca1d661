package integration

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scaleControl is an `egressgate control` under the scale benchmark. Its
// log is counted as it is written rather than kept whole: at a thousand
// lines a reload, re-reading it on every poll would load the two cores
// the measurement shares.
type scaleControl struct {
	cmd     *exec.Cmd
	log     *logMarks
	ready   chan struct{}
	exited  chan struct{}
	exitErr error
}

func startScaleControl(b *testing.B, args ...string) *scaleControl {
	b.Helper()
	c := &scaleControl{cmd: exec.Command(egressgateBin, args...), log: &logMarks{}, ready: make(chan struct{}), exited: make(chan struct{})}
	c.cmd.Stderr = c.log
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				once.Do(func() { close(c.ready) })
			}
		}
		c.exitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c
}

func (c *scaleControl) pid() int { return c.cmd.Process.Pid }

func (c *scaleControl) waitReady(b *testing.B) {
	b.Helper()
	select {
	case <-c.ready:
	case <-c.exited:
		b.Fatalf("control exited before ready: %v\n%s", c.exitErr, c.log.tail())
	case <-time.After(startTimeout):
		b.Fatalf("control not ready after %s\n%s", startTimeout, c.log.tail())
	}
}

func (c *scaleControl) requireRunning(b *testing.B) {
	b.Helper()
	select {
	case <-c.exited:
		b.Fatalf("control exited: %v\n%s", c.exitErr, c.log.tail())
	default:
	}
}

// stop sends SIGTERM and waits for control to exit.
func (c *scaleControl) stop(b *testing.B) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		b.Errorf("control did not stop within 20s of SIGTERM")
	}
}

// logMarks counts, in control's log, the per-bottle lines of reloads with
// a trigger (every bottle logs one per reload: "configuration applied" or
// "reloaded; configuration unchanged") and the debug line "watching
// files", which ends each reload once control has also rewritten the
// bottles' files and re-armed its file watch. It keeps the last lines for
// a failure's report.
type logMarks struct {
	mu      sync.Mutex
	partial []byte
	mark    reloadMark
	last    []string
}

type reloadMark struct{ bottles, cycles int }

const marksTail = 40

func (l *logMarks) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		switch {
		case strings.Contains(line, `trigger="files changed"`):
			l.mark.bottles++
		case strings.Contains(line, `msg="watching files"`):
			l.mark.cycles++
		}
		if l.last = append(l.last, line); len(l.last) > marksTail {
			l.last = l.last[1:]
		}
	}
	return len(p), nil
}

func (l *logMarks) now() reloadMark {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mark
}

func (l *logMarks) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}
