#!/usr/bin/env bash
# Acts as an agent of the quick-start bottle, with nothing but what
# `egressgate agent-env` writes: one request to the demo upstream carrying
# the agent's own credential, which the egress replaces with the host's,
# and one to a host the bottle does not list, which it refuses. Needs
# `make run` (or scripts/run.sh) running, and curl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

manifest=${MANIFEST:-examples/quickstart.md}
state=${STATE_DIR:-.egressgate}
proxy=${PROXY:-127.0.0.1:3128}
agent=${AGENT_DIR:-.egressgate-agent}
mkdir -p "$agent"
agent=$(cd "$agent" && pwd)

command -v curl >/dev/null || { echo "demo-agent: curl is not installed" >&2; exit 1; }
# --ca-path: the agent runs on this machine, so env's paths are these.
bin/egressgate agent-env --manifest "$manifest" --state-dir "$state" --out "$agent" \
	--ca-path "$agent" --proxy-url "http://$proxy" >/dev/null

# as_agent CMD...: CMD with the agent's environment only.
as_agent() {
	env -i PATH="$PATH" HOME="$HOME" bash -c 'set -a; . "$1"; set +a; shift; "$@"' _ "$agent/env" "$@"
}

show() { sed 's/^/demo: | /'; }
records() { wc -l <"$state/audit.log" 2>/dev/null || echo 0; }
before=$(records)

echo "demo: the agent sends 'Authorization: Bearer agent-own-token' to https://demo.egressgate.test/echo"
as_agent curl -sS --max-time 20 -H 'Authorization: Bearer agent-own-token' https://demo.egressgate.test/echo 2>&1 | show
echo "demo: a path the route does not allow, https://demo.egressgate.test/admin"
as_agent curl -sS --max-time 20 -w 'HTTP %{http_code}\n' https://demo.egressgate.test/admin 2>&1 | show
echo "demo: a host the bottle does not list, https://example.com/"
as_agent curl -sS --max-time 20 https://example.com/ 2>&1 | show || true

# The audit trail has all three; Envoy sends its entries within a second.
for _ in $(seq 50); do
	(($(records) >= before + 3)) && break
	sleep 0.1 # polling for the records, with the loop as deadline
done
echo "demo: bin/egressgate audit --state-dir $state --all -n 3"
bin/egressgate audit --state-dir "$state" --all -n 3 2>&1 | show
