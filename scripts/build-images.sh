#!/usr/bin/env bash
# Builds, with no registry, the images the compose stack and the container
# tests use, tagged as docker-compose.yml expects:
#   egressgate:dev         static egressgate on scratch, non-root, no shell
#   egressgate/envoy:1.40.0  the official envoyproxy/envoy:v1.40.0 when present
#                          locally, else the pinned Envoy binary + ldd libraries
#   egressgate/tools:dev   the demo upstream (standin) and the agent probe
set -euo pipefail

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
passwd='nonroot:x:65532:65532:nonroot:/:/nonexistent'

# egressgate
mkdir -p "${work}/egressgate"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "${work}/egressgate/egressgate" ./cmd/egressgate
echo "${passwd}" > "${work}/egressgate/passwd"
mkdir -p "${work}/egressgate/dirs/state" "${work}/egressgate/dirs/agent" "${work}/egressgate/dirs/boot" "${work}/egressgate/dirs/sidecar"
cp /etc/ssl/certs/ca-certificates.crt "${work}/egressgate/"
docker build -q --target prebuilt -t egressgate:dev -f docker/egressgate.Dockerfile "${work}/egressgate" >/dev/null
echo "built egressgate:dev"

# envoy
if docker image inspect "envoyproxy/envoy:v${ENVOY_VERSION}" >/dev/null 2>&1; then
	docker tag "envoyproxy/envoy:v${ENVOY_VERSION}" "egressgate/envoy:${ENVOY_VERSION}"
	echo "tagged envoyproxy/envoy:v${ENVOY_VERSION} as egressgate/envoy:${ENVOY_VERSION}"
else
	scripts/setup-envoy.sh >/dev/null
	bin="$(readlink -f .tools/bin/envoy)"
	root="${work}/envoy/rootfs"
	mkdir -p "${root}/usr/local/bin" "${root}/etc"
	cp "${bin}" "${root}/usr/local/bin/envoy"
	# The dynamic loader and every library ldd names, at the same paths.
	for lib in $(ldd "${bin}" | grep -oE '/[^ ]+'); do
		mkdir -p "${root}$(dirname "${lib}")"
		cp -L "${lib}" "${root}${lib}"
	done
	echo "${passwd}" > "${root}/etc/passwd"
	mkdir -p "${root}/etc/ssl/certs"
	cp /etc/ssl/certs/ca-certificates.crt "${root}/etc/ssl/certs/ca-certificates.crt"
	docker build -q -t "egressgate/envoy:${ENVOY_VERSION}" -f docker/envoy.Dockerfile "${work}/envoy" >/dev/null
	echo "built egressgate/envoy:${ENVOY_VERSION} from ${bin}"
fi

# demo upstream and agent probe
mkdir -p "${work}/tools"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "${work}/tools/standin" ./docker/standin
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "${work}/tools/agentprobe" ./docker/agentprobe
echo "${passwd}" > "${work}/tools/passwd"
mkdir -p "${work}/tools/dirs/shared"
docker build -q -t egressgate/tools:dev -f docker/tools.Dockerfile "${work}/tools" >/dev/null
echo "built egressgate/tools:dev"
