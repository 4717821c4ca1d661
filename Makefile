# The two commands of the README's quick start are `make run` and `make test`.
# Both install what they need (Envoy included) into .tools/ first.

SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools/bin
export ENVOY_BIN ?= $(TOOLS)/envoy
MANIFEST ?= examples/quickstart.md

.PHONY: setup run test lint bench bench-resync bench-scale bench-proxy golden images

setup:
	@scripts/setup.sh

# Builds bin/egressgate, then runs it and its Envoy on the example manifest
# with a local demo upstream, and sends one agent request through it
# (scripts/run.sh); Ctrl-C stops everything. Running needs only Envoy; the
# test tools (staticcheck, Codex, Docker) are installed by `make setup`.
run:
	@MANIFEST=$(MANIFEST) scripts/run.sh

# The whole suite: vet, staticcheck, unit tests and the integration tests
# against the real Envoy.
# Ryuk's image cannot be pulled where no registry is reachable; the tests
# remove their containers themselves.
test: setup lint
	TESTCONTAINERS_RYUK_DISABLED=true go test -race -count=1 -timeout 20m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	$(TOOLS)/staticcheck ./...

# Propagation benchmark: host change → served, p50/p99 over 100 trials.
bench: setup
	go test ./integration -run '^$$' -bench Propagation -benchtime 100x -count 1

# Re-sync benchmark: `control` down 3s (EGRESSGATE_RESYNC_OUTAGE) while the
# manifest changes, then restarted → the change served through Envoy and the
# sidecar, p50/p99/max over 20 trials.
bench-resync: setup
	go test ./integration -run '^$$' -bench ControlRestartResync -benchtime 20x -count 1

# Scale benchmark (issue 10): one `egressgate control` with 1,000 bottles
# and 2,000 simulated xDS clients on loopback; SCALE_BOTTLES, SCALE_TRIALS
# and SCALE_STREAMS_PER_CONN change its size (docs/benchmarks.md).
bench-scale:
	go test ./integration -run '^$$' -bench ControlScale -benchtime 1x -count 1 -timeout 30m -v

# Proxy benchmark (issue 11): the same agent load through egressgate,
# through the same Envoy alone on a static config mirroring egressgate's,
# and through mitmproxy, next to a direct baseline; BENCH_PROXY_ARGS takes
# its flags, e.g. BENCH_PROXY_ARGS='-systems egressgate,envoy-alone
# -duration 2s' (docs/benchmarks.md). It needs only Envoy, not the rest of
# `make setup`; mitmproxy it installs itself (scripts/setup-mitmproxy.sh).
bench-proxy:
	@scripts/setup-envoy.sh
	go run ./bench/proxy $(BENCH_PROXY_ARGS)

# The images docker-compose.yml and the container tests use, built locally.
images:
	@scripts/setup-envoy.sh
	scripts/build-images.sh

# Rewrites the xDS golden files; review the diff before committing.
golden:
	go test ./xds -run TestTranslateGolden -update
