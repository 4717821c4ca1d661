package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Systems and modes, in the order they run and are reported.
var (
	allSystems = []string{sysDirect, sysEgressgate, sysEgressgateAlt, sysEnvoyAlone, sysMitmproxy}
	allModes   = []string{modeKeepalive, modeH2, modeTunnel, modeSingle}
)

const (
	sysDirect     = "direct"
	sysEgressgate = "egressgate"
	// sysEgressgateAlt is a second egressgate build (-egressgate-alt-bin),
	// measured in the same run as the first: a change is compared with the
	// build before it in the same conditions, not across runs.
	sysEgressgateAlt = "egressgate-alt"
	sysEnvoyAlone    = "envoy-alone"
	sysMitmproxy     = "mitmproxy"
)

// options is what one run measures, from flags and environment.
type options struct {
	systems  []string
	modes    []string
	rounds   int
	duration time.Duration // measured part of each mode
	warmup   time.Duration // untimed load before it
	clients  int           // concurrent clients in keepalive, h2 and tunnel
	// coldTimeout bounds a cold start: launch → first proxied 200.
	coldTimeout time.Duration
	keep        bool // keep the temp dir (configs, logs, state dirs)

	envoyBin      string   // -envoy, $ENVOY_BIN, else .tools/bin/envoy
	egressgateBin string   // -egressgate-bin, $EGRESSGATE_BIN, else built from the tree
	altBin        string   // -egressgate-alt-bin, $EGRESSGATE_ALT_BIN: the egressgate-alt system's build
	mitmdumpBin   string   // -mitmdump, $MITMDUMP_BIN, else installed by scripts/setup-mitmproxy.sh
	egressgateEnv []string // extra KEY=VALUE for egressgate, e.g. EGRESSGATE_PPROF
}

// listFlag is a comma-separated flag checked against the values allowed.
type listFlag struct {
	values  *[]string
	allowed []string
}

func (l listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l listFlag) Set(s string) error {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(l.allowed, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(l.allowed, ", "))
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	// Run and report in the canonical order whatever order was typed.
	slices.SortFunc(out, func(a, b string) int { return slices.Index(l.allowed, a) - slices.Index(l.allowed, b) })
	*l.values = out
	return nil
}

// envFlag collects repeated KEY=VALUE flags.
type envFlag struct{ values *[]string }

func (e envFlag) String() string {
	if e.values == nil {
		return ""
	}
	return strings.Join(*e.values, " ")
}

func (e envFlag) Set(s string) error {
	if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	*e.values = append(*e.values, s)
	return nil
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	o := options{
		systems: slices.DeleteFunc(slices.Clone(allSystems), func(s string) bool { return s == sysEgressgateAlt }),
		modes:   slices.Clone(allModes),
	}
	fs := flag.NewFlagSet("bench-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench/proxy [flags]   (make bench-proxy BENCH_PROXY_ARGS='...')")
		fmt.Fprintln(stderr, "Compares the proxy path of egressgate, Envoy alone and mitmproxy against a direct baseline.")
		fs.PrintDefaults()
	}
	fs.Var(listFlag{&o.systems, allSystems}, "systems", "systems to compare, comma-separated: "+strings.Join(allSystems, ","))
	fs.Var(listFlag{&o.modes, allModes}, "modes", "load modes, comma-separated: "+strings.Join(allModes, ","))
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; every system runs every mode once a round, and the report gives medians")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each mode")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "untimed load before each measurement")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients in keepalive, h2 and tunnel (single always has 1)")
	fs.DurationVar(&o.coldTimeout, "cold-timeout", time.Minute, "how long a system may take from launch to its first proxied 200")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir with every system's config, logs and state dir, and print its path")
	fs.StringVar(&o.envoyBin, "envoy", os.Getenv("ENVOY_BIN"), "Envoy binary for egressgate and envoy-alone (default $ENVOY_BIN, else .tools/bin/envoy)")
	fs.StringVar(&o.egressgateBin, "egressgate-bin", os.Getenv("EGRESSGATE_BIN"), "egressgate binary to measure (default $EGRESSGATE_BIN, else built from this tree)")
	fs.StringVar(&o.altBin, "egressgate-alt-bin", os.Getenv("EGRESSGATE_ALT_BIN"), "a second egressgate binary, measured in the same run as system egressgate-alt (default $EGRESSGATE_ALT_BIN)")
	fs.StringVar(&o.mitmdumpBin, "mitmdump", os.Getenv("MITMDUMP_BIN"), "mitmdump binary (default $MITMDUMP_BIN, else installed by scripts/setup-mitmproxy.sh)")
	fs.Var(envFlag{&o.egressgateEnv}, "egressgate-env", "KEY=VALUE added to egressgate's environment (repeatable), e.g. EGRESSGATE_PPROF=127.0.0.1:6061 with a -tags pprof build")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	if o.altBin != "" && !o.has(sysEgressgateAlt) {
		o.systems = append(o.systems, sysEgressgateAlt)
		slices.SortFunc(o.systems, func(a, b string) int { return slices.Index(allSystems, a) - slices.Index(allSystems, b) })
	}
	if o.altBin == "" && o.has(sysEgressgateAlt) {
		errs = append(errs, errors.New("system egressgate-alt needs -egressgate-alt-bin"))
	}
	if o.rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if o.clients < 1 {
		errs = append(errs, errors.New("-clients must be at least 1"))
	}
	if o.duration <= 0 || o.warmup < 0 {
		errs = append(errs, errors.New("-duration must be positive and -warmup not negative"))
	}
	if len(o.systems) == 0 || len(o.modes) == 0 {
		errs = append(errs, errors.New("-systems and -modes need at least one value"))
	}
	return o, errors.Join(errs...)
}

func (o options) has(system string) bool { return slices.Contains(o.systems, system) }

// order is the systems in the order round runs them: egressgate and
// egressgate-alt swap places every other round, so neither always runs
// right after the other's load.
func (o options) order(round int) []string {
	out := slices.Clone(o.systems)
	i, j := slices.Index(out, sysEgressgate), slices.Index(out, sysEgressgateAlt)
	if round%2 == 0 && i >= 0 && j >= 0 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
