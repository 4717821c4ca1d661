#!/usr/bin/env bash
# Installs a pinned mitmproxy into .tools/mitmproxy-venv for the proxy
# benchmark (make bench-proxy, bench/proxy), and links its mitmdump as
# .tools/bin/mitmdump. Only the benchmark uses it; `make setup` does not.
#
# 11.0.2 is the newest mitmproxy that runs on Python 3.11 (12.x needs
# 3.12), the Python of Debian 12 and of these machines. Override with
# MITMPROXY_VERSION on a newer Python.
#
# Idempotent: if .tools/bin/mitmdump already reports MITMPROXY_VERSION,
# nothing is done. Prints one line at the end: the binary's path and version.
set -euo pipefail

MITMPROXY_VERSION="${MITMPROXY_VERSION:-11.0.2}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${repo_root}/.tools"
venv="${tools}/mitmproxy-venv"
link="${tools}/bin/mitmdump"

# installed_version prints the version mitmdump reports ("Mitmproxy: 11.0.2"),
# or nothing if it is missing or does not run.
installed_version() {
	[[ -x "${link}" ]] || return 0
	"${link}" --version 2>/dev/null | sed -n 's/^Mitmproxy: *\([0-9.]*\).*/\1/p' | head -n1 || true
}

report() {
	echo "mitmdump ${MITMPROXY_VERSION} at ${link}"
}

if [[ "$(installed_version)" == "${MITMPROXY_VERSION}" ]]; then
	report
	exit 0
fi
command -v python3 >/dev/null 2>&1 || {
	echo "setup-mitmproxy: python3 is required" >&2
	exit 1
}
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || {
	echo "setup-mitmproxy: python3 lacks venv/ensurepip; install python3-venv (apt-get install python3-venv)" >&2
	exit 1
}
# A venv left half-made by an interrupted run has no working pip; start
# it again rather than patch it.
if ! { [[ -x "${venv}/bin/python" ]] && "${venv}/bin/python" -m pip --version >/dev/null 2>&1; }; then
	rm -rf "${venv}"
	python3 -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
	"mitmproxy==${MITMPROXY_VERSION}" >&2
mkdir -p "${tools}/bin"
ln -sfn "${venv}/bin/mitmdump" "${link}"

got="$(installed_version)"
if [[ "${got}" != "${MITMPROXY_VERSION}" ]]; then
	echo "setup-mitmproxy: ${link} reports version '${got}', want ${MITMPROXY_VERSION}" >&2
	exit 1
fi
report
