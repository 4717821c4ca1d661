# The demo upstream and the agent probe used by the compose stack and the
# container tests: static binaries on scratch.
FROM scratch
COPY standin agentprobe /
COPY passwd /etc/passwd
COPY --chown=65532:65532 dirs/ /
USER 65532:65532
