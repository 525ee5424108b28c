# syntax=docker/dockerfile:1
# Muttr seed and pod in one small image:
#   docker build -t muttr --build-arg MUTTR_GIT_REV=$(git rev-parse --short=12 HEAD) .
#   docker run --rm muttr muttr-pod --version
# Runs as an unprivileged user; data in /var/lib/muttr (a volume). The default command is a
# pod; run `muttr-seed …` for a seed. See deploy/compose.yaml for a small network.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The revision for --version (.git is not sent to the builder, see .dockerignore).
ARG MUTTR_GIT_REV=unknown
ENV MUTTR_GIT_REV=${MUTTR_GIT_REV}
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p muttr-node -p muttr-pod --bins \
 && mkdir -p /out \
 && cp target/release/muttr-seed target/release/muttr-pod target/release/muttr /out/ \
 && strip /out/*

FROM debian:bookworm-slim
# ca-certificates: the system trust store (other pods' certificates); curl: the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/muttr --create-home muttr
COPY --from=build /out/ /usr/local/bin/
USER muttr
WORKDIR /var/lib/muttr
VOLUME /var/lib/muttr
ENV STATE_DIRECTORY=/var/lib/muttr
EXPOSE 8080/tcp 4000/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT []
CMD ["muttr-pod", "--listen", "0.0.0.0:8080", "--public-host", "localhost:8080", "--seed-listen", "0.0.0.0:4000", "--seed-advertise", "127.0.0.1:4000"]
