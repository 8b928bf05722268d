# syntax=docker/dockerfile:1
# The image of one Gaia binary, picked by the build argument BIN. Build from the repository root:
#   docker build --build-arg BIN=gaia-webhook    -t gaia/gaia-webhook:0.1.0 .
#   docker build --build-arg BIN=gaia-autoscaler -t gaia/gaia-autoscaler:0.1.0 .

FROM rust:1.95-bookworm AS build
ARG BIN
RUN case "$BIN" in gaia-webhook|gaia-autoscaler) ;; \
      *) echo "BIN must be gaia-webhook or gaia-autoscaler, not '$BIN' (--build-arg BIN=...)" >&2; exit 1 ;; \
    esac
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY contract contract
COPY webhook webhook
COPY autoscaler-ext autoscaler-ext
COPY tests/eval/replay tests/eval/replay
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin "$BIN" \
 && install -D "target/release/$BIN" "/out/$BIN"

FROM debian:bookworm-slim
ARG BIN
# rustls with the ring provider: no OpenSSL at run time; the cluster CA comes with the
# ServiceAccount token mount.
COPY --from=build /out/${BIN} /usr/local/bin/${BIN}
ENV GAIA_BIN=/usr/local/bin/${BIN}
USER 65532:65532
# An exec-form ENTRYPOINT cannot name the binary through BIN; the shell only execs it, so the
# binary runs as PID 1 with the container's arguments, as an ENTRYPOINT naming it would.
ENTRYPOINT ["/bin/sh", "-c", "exec \"$GAIA_BIN\" \"$@\"", "gaia"]
