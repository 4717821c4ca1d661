package envoy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// pollInterval paces the loops that wait for Envoy's admin address
	// file and /ready; Envoy takes about a second to start.
	pollInterval = 25 * time.Millisecond
	// cancelGrace is how long Envoy gets after SIGTERM, when the context
	// given to Start ends, before it is killed.
	cancelGrace = 5 * time.Second
	// errorTailLines is how much of Envoy's log an error carries.
	errorTailLines = 20
	// maxTailBytes bounds how much of the log file LogTail reads.
	maxTailBytes = 64 << 10
)

// Options configures an Envoy child process.
type Options struct {
	Bin        string // required
	ConfigPath string // bootstrap file; required
	// LogPath receives Envoy's stdout and stderr (truncated at Start). A file
	// rather than --log-path, so what Envoy prints before its logger is up,
	// or as it crashes, is kept too. Required.
	LogPath string
	// AdminAddressPath is where Envoy writes its admin address (the admin
	// socket's path) once the admin listener is bound: the sign that the
	// socket is there to dial. Required.
	AdminAddressPath string
	// Concurrency is Envoy's worker thread count; 0 keeps Envoy's default
	// (one per core).
	Concurrency int
	// LogLevel is Envoy's -l; empty means "info".
	LogLevel string
}

// Process is a running Envoy child.
type Process struct {
	opts Options
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // written once before done is closed
}

// Start runs Envoy. Like exec.CommandContext, ctx bounds the process's
// life: when ctx ends, Envoy gets SIGTERM and, cancelGrace later, SIGKILL.
// Use Stop to end it earlier.
func Start(ctx context.Context, o Options) (*Process, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	// A stale address file from an earlier run would make AdminSocket
	// report a socket before this Envoy has bound it.
	if err := os.Remove(o.AdminAddressPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("envoy admin address file: %w", err)
	}
	logFile, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("envoy log: %w", err)
	}
	p := &Process{
		opts: o,
		cmd:  o.command(ctx, logFile),
		log:  logFile,
		done: make(chan struct{}),
	}
	if err := p.start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start envoy %s: %w", o.Bin, err)
	}
	return p, nil
}

func (o Options) check() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"Bin", o.Bin}, {"ConfigPath", o.ConfigPath}, {"LogPath", o.LogPath}, {"AdminAddressPath", o.AdminAddressPath},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("envoy options: %s is required", f.name))
		}
	}
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("envoy options: concurrency %d is negative", o.Concurrency))
	}
	return errors.Join(errs...)
}

func (o Options) args() []string {
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	args := []string{
		"-c", o.ConfigPath,
		// Hot restart keeps shared memory and a domain socket keyed by
		// --base-id, so a second Envoy on the machine would fail to start.
		// egressgate never hot-restarts (config changes arrive over xDS).
		"--disable-hot-restart",
		"--admin-address-path", o.AdminAddressPath,
		"-l", level,
	}
	if o.Concurrency > 0 {
		args = append(args, "--concurrency", strconv.Itoa(o.Concurrency))
	}
	return args
}

func (o Options) command(ctx context.Context, logFile *os.File) *exec.Cmd {
	cmd := exec.CommandContext(ctx, o.Bin, o.args()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	// Envoy drains and exits on SIGTERM; SIGKILL (exec's default) would
	// skip that.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = cancelGrace
	return cmd
}

// start runs cmd on a goroutine locked to its OS thread for the child's
// whole life. Linux delivers Pdeathsig when the *thread* that forked the
// child exits, not the process; a thread the Go runtime retires could
// otherwise kill a healthy Envoy.
func (p *Process) start() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with this goroutine, after
		// Envoy is gone.
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = p.cmd.Wait()
		p.log.Close()
		close(p.done)
	}()
	return <-started
}

// PID returns Envoy's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Bin is the binary Envoy was started from; with ConfigPath, a failed
// start can be validated to say why.
func (p *Process) Bin() string { return p.opts.Bin }

// ConfigPath is the bootstrap Envoy was started with.
func (p *Process) ConfigPath() string { return p.opts.ConfigPath }

// Done is closed when Envoy has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how Envoy exited (nil for a clean exit); only meaningful once
// Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop sends Envoy SIGTERM and waits for it to exit; if ctx ends first it
// kills Envoy. Stopping an Envoy that has already exited returns nil, so
// Stop is safe to call more than once.
func (p *Process) Stop(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop envoy (pid %d): %w", p.PID(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill envoy (pid %d): %w", p.PID(), err)
	}
	<-p.done // SIGKILL cannot be caught: Wait returns promptly.
	return fmt.Errorf("envoy (pid %d) ignored SIGTERM, killed: %w", p.PID(), ctx.Err())
}

// AdminSocket waits until Envoy has bound its admin socket and returns the
// socket's path; AdminClient(path) talks to it. It fails early, with
// Envoy's log tail, if Envoy exits.
func (p *Process) AdminSocket(ctx context.Context) (string, error) {
	return poll(ctx, p, "admin socket", func(context.Context) (string, bool) {
		data, err := os.ReadFile(p.opts.AdminAddressPath)
		addr := strings.TrimSpace(string(data))
		return addr, err == nil && addr != ""
	})
}

// WaitReady waits until Envoy's /ready answers 200 "LIVE", which Envoy does
// once its initial clusters and listeners from xDS are in place.
func (p *Process) WaitReady(ctx context.Context) error {
	socket, err := p.AdminSocket(ctx)
	if err != nil {
		return err
	}
	client := AdminClient(socket)
	_, err = poll(ctx, p, "ready", func(ctx context.Context) (struct{}, bool) {
		return struct{}{}, isLive(ctx, client)
	})
	return err
}

func isLive(ctx context.Context, client *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, AdminURL+"/ready", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	return err == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "LIVE"
}

// poll calls check every pollInterval until it reports done, ctx ends, or
// Envoy exits; the last two are errors carrying Envoy's log tail.
func poll[T any](ctx context.Context, p *Process, what string, check func(context.Context) (T, bool)) (T, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		if v, ok := check(ctx); ok {
			return v, nil
		}
		select {
		case <-p.done:
			var zero T
			return zero, fmt.Errorf("envoy exited before %s (%v); log tail:\n%s", what, p.err, p.LogTail(errorTailLines))
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("waiting for envoy %s: %w; log tail:\n%s", what, ctx.Err(), p.LogTail(errorTailLines))
		case <-ticker.C:
		}
	}
}

// LogTail returns the last n lines of Envoy's log, for error reports.
func (p *Process) LogTail(n int) string {
	f, err := os.Open(p.opts.LogPath)
	if err != nil {
		return fmt.Sprintf("(envoy log unreadable: %v)", err)
	}
	defer f.Close()
	// Only the end of a long log matters; read at most maxTailBytes of it.
	if fi, err := f.Stat(); err == nil && fi.Size() > maxTailBytes {
		if _, err := f.Seek(-maxTailBytes, io.SeekEnd); err != nil {
			return fmt.Sprintf("(envoy log unreadable: %v)", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(envoy log unreadable: %v)", err)
	}
	return lastLines(string(data), n)
}
