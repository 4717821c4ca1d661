// Command proxy is the proxy benchmark of issue 11 (make bench-proxy): the
// same agent load through egressgate, through the same Envoy alone on a
// static config that mirrors egressgate's, and through mitmproxy, next to
// a direct baseline, all on loopback. Systems are interleaved over rounds
// and the report gives medians; docs/benchmarks.md explains the figures.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-proxy:", err)
		os.Exit(1)
	}
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	env, cleanup, err := prepare(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer cleanup()

	systems := map[string]system{
		sysDirect: direct{}, sysEnvoyAlone: envoyAlone{}, sysMitmproxy: mitmproxySystem{},
		sysEgressgate:    egressgateSystem{sys: sysEgressgate, bin: env.egressgateBin},
		sysEgressgateAlt: egressgateSystem{sys: sysEgressgateAlt, bin: env.altBin},
	}
	res := newResults(o)
	res.started, res.loadBefore = time.Now(), loadAverage()
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.order(round) {
			if err := runRound(ctx, env, systems[name], round, res, stderr); err != nil {
				return fmt.Errorf("round %d, %s: %w", round, name, err)
			}
		}
	}
	res.loadAfter = loadAverage()
	res.write(stdout, env)
	return nil
}

// runRound launches one system, times its cold start, runs every mode
// against it and stops it.
func runRound(ctx context.Context, env *benchEnv, sys system, round int, res *results, stderr io.Writer) (err error) {
	start := time.Now()
	in, err := sys.launch(env, round)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := in.stop(); err == nil {
			err = stopErr
		}
	}()
	roots, err := firstOK(ctx, env, in, env.opts.coldTimeout)
	if err != nil {
		if !env.opts.keep {
			err = fmt.Errorf("%w (rerun with -keep to read its logs)", err)
		}
		return err
	}
	st := startFigures{cold: time.Since(start)}
	parts, err := in.parts()
	if err != nil {
		return err
	}
	for _, p := range parts {
		st.parts = append(st.parts, p.name)
	}
	if st.rssIdle, err = partsRSS(parts); err != nil {
		return err
	}
	t := in.target(env, roots)
	for _, mode := range env.opts.modes {
		spec := specFor(mode, env.opts.clients)
		r, err := runLoad(ctx, t, spec, env.opts.warmup, env.opts.duration, parts, env.up)
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		if err := in.exited(); err != nil {
			return err
		}
		res.addLoad(sys.name(), mode, r)
		fmt.Fprintf(stderr, "round %d/%d %-11s %-9s %8.0f req/s  p50 %-8s p99 %-8s errors %d  wrong headers %d%s\n",
			round, env.opts.rounds, sys.name(), mode, r.rate(), ms(percentile(r.latencies, 50)), ms(percentile(r.latencies, 99)),
			r.errors, r.wrong, firstErrNote(r))
	}
	if st.rssAfter, err = partsRSS(parts); err != nil {
		return err
	}
	res.addStart(sys.name(), st)
	return nil
}

func firstErrNote(r loadResult) string {
	if r.firstErr == "" {
		return ""
	}
	return " (first: " + r.firstErr + ")"
}
