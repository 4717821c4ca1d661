#!/usr/bin/env bash
# Installs everything the project needs beyond Go itself into the
# git-ignored .tools/ folder: a pinned Envoy (scripts/setup-envoy.sh) and a
# pinned staticcheck. Idempotent; safe to run before every build.
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${repo_root}/.tools/bin"

command -v go >/dev/null || { echo "setup: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
"${repo_root}/scripts/setup-envoy.sh"

if ! "${bin}/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
	mkdir -p "${bin}"
	GOBIN="${bin}" go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
echo "staticcheck ${STATICCHECK_VERSION} at ${bin}/staticcheck"
