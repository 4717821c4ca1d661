#!/usr/bin/env bash
# `make run`: egressgate and its Envoy on the quick-start manifest, plus a
# local stand-in upstream (demo.egressgate.test on 127.0.0.1:9443), so the
# first run shows, with no internet, a request leaving with the host's
# token in place of the agent's (scripts/demo-agent.sh). It then keeps
# serving until Ctrl-C, which stops everything and exits 0.
#
# MANIFEST, STATE_DIR, PROXY and ADMIN override the defaults; arguments are
# passed on to `egressgate serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

manifest=${MANIFEST:-examples/quickstart.md}
state=${STATE_DIR:-.egressgate}
proxy=${PROXY:-127.0.0.1:3128}
admin=${ADMIN:-127.0.0.1:9902}
mkdir -p "$state"
demo_dir=$(cd "$state" && pwd)/demo-upstream
export ENVOY_BIN=${ENVOY_BIN:-$PWD/.tools/bin/envoy}
# The stand-in's "host token": a made-up value, so it can be shown.
export EGRESSGATE_DEMO_TOKEN=${EGRESSGATE_DEMO_TOKEN:-demo-host-token}

scripts/setup-envoy.sh
mkdir -p bin
go build -o bin/ ./cmd/egressgate ./cmd/demo-upstream

pids=()
stop() {
	trap - INT TERM EXIT
	((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null
	wait
}
# Ctrl-C reaches every process of the terminal's group; wait for them and
# exit 0, so make has no error to report.
trap 'stop; exit 0' INT TERM
trap stop EXIT

# wait_for WHAT PID CMD...: until CMD succeeds, while PID lives, for 60 s.
wait_for() {
	local what=$1 pid=$2
	shift 2
	for _ in $(seq 600); do
		"$@" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { echo "run: $what stopped; see its error above" >&2; return 1; }
		sleep 0.1 # polling a condition, with the deadline of the loop
	done
	echo "run: $what not ready after 60 s" >&2
	return 1
}

rm -f "$demo_dir/roots.pem"
bin/demo-upstream --listen 127.0.0.1:9443 --dir "$demo_dir" &
pids+=($!)
wait_for "the demo upstream" "${pids[0]}" test -s "$demo_dir/roots.pem"

# Envoy verifies upstreams with --system-ca: the system roots plus the
# stand-in's CA, so the stand-in passes like a public host.
bin/egressgate serve --manifest "$manifest" --state-dir "$state" --proxy "$proxy" \
	--admin "$admin" --system-ca "$demo_dir/roots.pem" "$@" &
pids+=($!)
wait_for egressgate "${pids[1]}" bin/egressgate status --admin "$admin"

if grep -q 'demo.egressgate.test' "$manifest"; then
	STATE_DIR=$state PROXY=$proxy MANIFEST=$manifest scripts/demo-agent.sh ||
		echo "run: the demo agent failed (see above); egressgate keeps serving" >&2
fi
echo "run: serving; try bin/egressgate status --admin $admin, bin/egressgate audit --state-dir $state; Ctrl-C stops"
wait "${pids[1]}"
