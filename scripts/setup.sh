#!/usr/bin/env bash
# Installs everything the project needs beyond Go itself into the
# git-ignored .tools/ folder: a pinned Envoy (scripts/setup-envoy.sh) and a
# pinned staticcheck. Idempotent; safe to run before every build.
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
# The real Codex CLI and Claude Code, for the tests that run them through
# the egress.
CODEX_VERSION="${CODEX_VERSION:-0.171.0}"
CLAUDE_VERSION="${CLAUDE_VERSION:-2.1.332}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${repo_root}/.tools/bin"

command -v go >/dev/null || { echo "setup: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
"${repo_root}/scripts/setup-envoy.sh"

if ! "${bin}/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	mkdir -p "${bin}"
	GOBIN="${bin}" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
echo "staticcheck ${STATICCHECK_VERSION} at ${bin}/staticcheck"

# install_npm_cli NAME PACKAGE VERSION: installs PACKAGE@VERSION into
# .tools/NAME and links its NAME binary into .tools/bin, unless that
# version is there already. Without npm it installs it from Debian when
# root, fails under CI and skips elsewhere (the test that needs it skips).
install_npm_cli() {
	local name="$1" package="$2" version="$3" dir="${repo_root}/.tools/$1"
	if "${bin}/${name}" --version 2>/dev/null | grep -q "${version}"; then
		echo "${name} ${version} at ${bin}/${name}"
		return
	fi
	if ! command -v npm >/dev/null && [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "setup: installing npm (for the ${name} test)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >&2
	fi
	if command -v npm >/dev/null; then
		npm install --silent --no-audit --no-fund --prefix "${dir}" "${package}@${version}" >&2
		ln -sf "${dir}/node_modules/.bin/${name}" "${bin}/${name}"
		echo "${name} ${version} at ${bin}/${name}"
	elif [[ -n "${CI:-}" ]]; then
		echo "setup: npm is required for the ${name} test (apt-get install npm)" >&2
		exit 1
	else
		echo "setup: no npm; the ${name} test will be skipped" >&2
	fi
}
install_npm_cli codex "@openai/codex" "${CODEX_VERSION}"
# Claude Code ships a native binary through an optional npm dependency.
install_npm_cli claude "@anthropic-ai/claude-code" "${CLAUDE_VERSION}"

# curl is the quick start's agent (scripts/demo-agent.sh) and its test's.
if ! command -v curl >/dev/null && [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
	echo "setup: installing curl (for the quick-start test)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2
fi

# Docker, for the container tests. Under CI a missing Docker fails the run;
# elsewhere the container tests skip themselves and say why.
if [[ -n "${CI:-}" ]]; then
	"${repo_root}/scripts/start-docker.sh"
elif ! "${repo_root}/scripts/start-docker.sh"; then
	echo "setup: no Docker; the container tests will be skipped" >&2
fi
