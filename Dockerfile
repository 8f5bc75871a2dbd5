# The hostscope-agent image that deploy/kubernetes runs on every node.
#
#   docker build -t registry.example.net/hostscope/agent:0.1.0 .
#   (or: buildah bud -t registry.example.net/hostscope/agent:0.1.0 .)
#
# Two stages: a Rust toolchain builds the agent; the image ships only the
# binary on distroless "cc" (glibc, libgcc, CA certificates, no shell, no
# package manager) and runs as its non-root user 65532. glibc rather than a
# static musl binary so that getpwuid(3) resolves usernames from the host's
# /etc/passwd, which the DaemonSet mounts read-only.
#
# To package a binary built outside (as .ci/deploy does, where no base
# image can be pulled), build with --build-arg AGENT_FROM=prebuilt: the
# image then takes target/release/hostscope-agent from the context, file
# capabilities included (setcap them on it first).
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG AGENT_FROM=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The four capabilities as file capabilities: the container runs as a
# non-root user, for whom capabilities added by the runtime are dropped at
# exec unless the binary carries them (the DaemonSet's bounding set limits
# them to the same four).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
RUN cargo build --release --locked -p hostscope-agent \
    && install -D -m 0755 target/release/hostscope-agent /out/hostscope-agent \
    && setcap cap_dac_read_search,cap_kill,cap_net_admin,cap_sys_ptrace=ep /out/hostscope-agent

FROM scratch AS prebuilt
COPY target/release/hostscope-agent /out/hostscope-agent

FROM ${AGENT_FROM} AS agent

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="hostscope-agent" \
      org.opencontainers.image.description="Processes and network interfaces of the host, over gRPC with mutual TLS" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=agent /out/hostscope-agent /usr/local/bin/hostscope-agent
USER 65532:65532
EXPOSE 7443
ENTRYPOINT ["/usr/local/bin/hostscope-agent"]
