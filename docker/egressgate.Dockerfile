# egressgate's image: a static binary on scratch, running as non-root, with
# no shell. Two ways to build it:
#
#   docker build -f docker/egressgate.Dockerfile .          (needs golang:1.26 from a registry)
#   scripts/build-images.sh                                  (no registry: builds the binary on the
#                                                             host and uses --target prebuilt)
#
# The prebuilt stage comes first on purpose: Docker's legacy builder stops at
# the target stage, so building it never asks a registry for golang.

FROM scratch AS prebuilt
COPY egressgate /egressgate
COPY passwd /etc/passwd
# Mount points owned by the runtime user, so named volumes mounted there
# start writable (Docker copies the ownership into a new volume).
COPY --chown=65532:65532 dirs/ /
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/egressgate"]

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/egressgate ./cmd/egressgate \
 && echo 'nonroot:x:65532:65532:nonroot:/:/nonexistent' > /out/passwd \
 && mkdir -p /out/dirs/state /out/dirs/agent /out/dirs/boot /out/dirs/sidecar

FROM scratch
COPY --from=build /out/egressgate /egressgate
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/dirs/ /
USER 65532:65532
ENTRYPOINT ["/egressgate"]
