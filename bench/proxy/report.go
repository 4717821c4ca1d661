package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// startFigures is one system's start-up and memory in one round.
type startFigures struct {
	cold              time.Duration // launch → first proxied 200
	parts             []string
	rssIdle, rssAfter []int64 // kB per part: before load, after every mode
}

// results holds every round's figures until the report.
type results struct {
	opts                  options
	started               time.Time
	loadBefore, loadAfter string
	loads                 map[string]map[string][]loadResult // system → mode → one per round
	starts                map[string][]startFigures          // system → one per round
}

func newResults(o options) *results {
	return &results{opts: o, loads: map[string]map[string][]loadResult{}, starts: map[string][]startFigures{}}
}

func (r *results) addLoad(system, mode string, l loadResult) {
	if r.loads[system] == nil {
		r.loads[system] = map[string][]loadResult{}
	}
	r.loads[system][mode] = append(r.loads[system][mode], l)
}

func (r *results) addStart(system string, s startFigures) {
	r.starts[system] = append(r.starts[system], s)
}

// write prints the report; its last line is the ratios.
func (r *results) write(w io.Writer, env *benchEnv) {
	o := r.opts
	fmt.Fprintf(w, "\nbench-proxy %s, %s\n", r.started.UTC().Format("2006-01-02 15:04 MST"), machine())
	for _, v := range env.versions {
		fmt.Fprintln(w, v)
	}
	fmt.Fprintf(w, "%d rounds; each round starts every system afresh, in the order %s, and runs each mode %s after %s of warm-up; figures are medians of the rounds, errors and wrong headers are totals\n",
		o.rounds, strings.Join(o.systems, ", "), o.duration, o.warmup)
	if o.has(sysEgressgate) {
		fmt.Fprintln(w, "egressgate: serve with its defaults: audit trail on (STATE_DIR/audit.log), log level info; its CPU and RSS are egressgate + its Envoy")
	}
	if o.has(sysEgressgateAlt) {
		fmt.Fprintln(w, "egressgate-alt: the same, another build; it and egressgate swap places every other round")
	}
	fmt.Fprintf(w, "load average before %s, after %s\n", r.loadBefore, r.loadAfter)
	for _, mode := range o.modes {
		r.writeMode(w, mode)
	}
	r.writeStarts(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, r.ratios())
}

func (r *results) writeMode(w io.Writer, mode string) {
	fmt.Fprintf(w, "\n%s: %s\n", mode, specFor(mode, r.opts.clients).describe())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\treq/s\tp50\tp99\tadded p50\tadded p99\tCPU s / 10k req\terrors\twrong headers")
	for _, sys := range r.opts.systems {
		rounds := r.loads[sys][mode]
		if len(rounds) == 0 {
			continue
		}
		errs, wrong := 0, int64(0)
		for _, l := range rounds {
			errs += l.errors
			wrong += l.wrong
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", sys, r.rate(sys, mode),
			ms(r.latency(sys, mode, 50)), ms(r.latency(sys, mode, 99)),
			r.addedText(sys, mode, 50), r.addedText(sys, mode, 99), r.cpuText(sys, mode), errs, wrong)
	}
	tw.Flush()
}

func (r *results) writeStarts(w io.Writer) {
	fmt.Fprintln(w, "\nstart-up and memory")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tcold start (min–max)\tRSS idle\tRSS after load")
	for _, sys := range r.opts.systems {
		starts := r.starts[sys]
		if len(starts) == 0 || len(starts[0].parts) == 0 {
			continue // direct: nothing to start
		}
		var colds []float64
		for _, s := range starts {
			colds = append(colds, s.cold.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%.2f s (%.2f–%.2f)\t%s\t%s\n", sys, median(colds), slices.Min(colds), slices.Max(colds),
			rssText(starts, func(s startFigures) []int64 { return s.rssIdle }),
			rssText(starts, func(s startFigures) []int64 { return s.rssAfter }))
	}
	tw.Flush()
}

// rssText is the median total RSS, and its parts when there are several.
func rssText(starts []startFigures, pick func(startFigures) []int64) string {
	names := starts[0].parts
	totals, perPart := []float64{}, make([][]float64, len(names))
	for _, s := range starts {
		var sum int64
		for i, kb := range pick(s) {
			sum += kb
			perPart[i] = append(perPart[i], float64(kb))
		}
		totals = append(totals, float64(sum))
	}
	text := fmt.Sprintf("%.0f MB", median(totals)/1024)
	if len(names) > 1 {
		var ps []string
		for i, n := range names {
			ps = append(ps, fmt.Sprintf("%s %.0f", n, median(perPart[i])/1024))
		}
		text += " (" + strings.Join(ps, " + ") + ")"
	}
	return text
}

func (r *results) rate(sys, mode string) float64 {
	return r.medianOf(sys, mode, func(l loadResult) float64 { return l.rate() })
}

func (r *results) latency(sys, mode string, p float64) time.Duration {
	return seconds(r.medianOf(sys, mode, func(l loadResult) float64 { return percentile(l.latencies, p).Seconds() }))
}

// added is the median over rounds of the system's percentile minus the
// direct baseline's in the same round; ok is false without a baseline.
func (r *results) added(sys, mode string, p float64) (time.Duration, bool) {
	base := r.loads[sysDirect][mode]
	rounds := r.loads[sys][mode]
	if sys == sysDirect || len(base) == 0 || len(rounds) == 0 {
		return 0, false
	}
	var diffs []float64
	for i := range min(len(base), len(rounds)) {
		diffs = append(diffs, (percentile(rounds[i].latencies, p) - percentile(base[i].latencies, p)).Seconds())
	}
	return seconds(median(diffs)), true
}

func (r *results) addedText(sys, mode string, p float64) string {
	d, ok := r.added(sys, mode, p)
	if !ok {
		return "—"
	}
	return ms(d)
}

// cpuPer10k is CPU seconds per 10,000 successful requests of part i
// (-1: every part together), median over rounds.
func (r *results) cpuPer10k(sys, mode string, i int) float64 {
	return r.medianOf(sys, mode, func(l loadResult) float64 {
		var cpu time.Duration
		for j, c := range l.cpu {
			if i < 0 || i == j {
				cpu += c
			}
		}
		if len(l.latencies) == 0 {
			return 0
		}
		return cpu.Seconds() / float64(len(l.latencies)) * 10000
	})
}

func (r *results) cpuText(sys, mode string) string {
	starts := r.starts[sys]
	if len(starts) == 0 || len(starts[0].parts) == 0 {
		return "—"
	}
	text := fmt.Sprintf("%.2f", r.cpuPer10k(sys, mode, -1))
	if names := starts[0].parts; len(names) > 1 {
		var ps []string
		for i, n := range names {
			ps = append(ps, fmt.Sprintf("%s %.2f", n, r.cpuPer10k(sys, mode, i)))
		}
		text += " (" + strings.Join(ps, " + ") + ")"
	}
	return text
}

func (r *results) medianOf(sys, mode string, f func(loadResult) float64) float64 {
	var vs []float64
	for _, l := range r.loads[sys][mode] {
		vs = append(vs, f(l))
	}
	return median(vs)
}

// ratios is the report's last line: egressgate (and egressgate-alt)
// against the others, and egressgate-alt against egressgate.
func (r *results) ratios() string {
	var groups []string
	perMode := func(label string, f func(mode string) (float64, bool)) {
		var vs []string
		for _, mode := range r.opts.modes {
			if v, ok := f(mode); ok {
				vs = append(vs, fmt.Sprintf("%s=%s", mode, ratio(v)))
			}
		}
		if len(vs) > 0 {
			groups = append(groups, label+" "+strings.Join(vs, " "))
		}
	}
	// pairs are the comparisons made, each system over another.
	var pairs [][2]string
	for _, sys := range []string{sysEgressgate, sysEgressgateAlt} {
		for _, other := range []string{sysEnvoyAlone, sysMitmproxy} {
			if r.opts.has(sys) && r.opts.has(other) {
				pairs = append(pairs, [2]string{sys, other})
			}
		}
	}
	if r.opts.has(sysEgressgate) && r.opts.has(sysEgressgateAlt) {
		pairs = append(pairs, [2]string{sysEgressgateAlt, sysEgressgate})
	}
	for _, p := range pairs {
		perMode(p[0]+"/"+p[1]+" throughput", func(mode string) (float64, bool) {
			return div(r.rate(p[0], mode), r.rate(p[1], mode))
		})
	}
	for _, p := range pairs {
		perMode("cpu per req "+p[0]+"/"+p[1], func(mode string) (float64, bool) {
			return div(r.cpuPer10k(p[0], mode, -1), r.cpuPer10k(p[1], mode, -1))
		})
	}
	for _, p := range pairs {
		a, ok1 := r.added(p[0], modeSingle, 50)
		b, ok2 := r.added(p[1], modeSingle, 50)
		if v, ok := div(a.Seconds(), b.Seconds()); ok1 && ok2 && ok {
			groups = append(groups, fmt.Sprintf("added p50 single %s/%s=%s", p[0], p[1], ratio(v)))
		}
	}
	var colds []string
	for _, p := range pairs {
		if v, ok := div(r.coldMedian(p[0]), r.coldMedian(p[1])); ok {
			colds = append(colds, fmt.Sprintf("%s/%s=%s", p[0], p[1], ratio(v)))
		}
	}
	if len(colds) > 0 {
		groups = append(groups, "cold start "+strings.Join(colds, " "))
	}
	if len(groups) == 0 {
		return "ratios: none (they need egressgate and envoy-alone or mitmproxy)"
	}
	return "ratios: " + strings.Join(groups, " | ")
}

func (r *results) coldMedian(sys string) float64 {
	var vs []float64
	for _, s := range r.starts[sys] {
		vs = append(vs, s.cold.Seconds())
	}
	return median(vs)
}

// div is a/b, not ok when either side is missing (0) or negative.
func div(a, b float64) (float64, bool) {
	if a <= 0 || b <= 0 {
		return 0, false
	}
	return a / b, true
}

func ratio(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// median of vs; 0 when empty.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ms prints a latency in milliseconds, to the microsecond below 10 ms.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 && v > -10 {
		return fmt.Sprintf("%.2fms", v)
	}
	return fmt.Sprintf("%.1fms", v)
}
