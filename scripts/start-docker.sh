#!/usr/bin/env bash
# Makes a Docker daemon answer, for the container tests: installs Debian's
# docker.io and docker-compose when missing (as root), and starts dockerd by
# hand when none is running (these machines start no services). Keeps
# Docker's default bridge. Exits non-zero if Docker cannot be had.
set -euo pipefail

if timeout 10 docker info >/dev/null 2>&1; then
	echo "docker: daemon already running"
	exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
	echo "docker: no daemon answers and only root can start one here" >&2
	exit 1
fi
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null; then
	echo "docker: installing docker.io and docker-compose" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose >&2
fi
log="${TMPDIR:-/tmp}/egressgate-dockerd.log"
nohup dockerd >"${log}" 2>&1 &
for _ in $(seq 1 60); do
	if timeout 5 docker info >/dev/null 2>&1; then
		echo "docker: daemon started (log ${log})"
		exit 0
	fi
	sleep 1
done
echo "docker: dockerd did not answer within 60 s; see ${log}" >&2
tail -n 20 "${log}" >&2 || true
exit 1
