# syntax=docker/dockerfile:1
# The Apus server image.
#   docker build -t apus:latest .
#   docker run --rm -p 8080:8080 apus:latest     # serves the example repository baked in at /models
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models" apus:latest
# Kubernetes manifests: deploy/kubernetes/ (they mount their own model volume over /models).
#
# The toolchain matches the one the project is developed with (Swift 6.3 on Debian 12, as
# scripts/install-deps.sh expects); override with --build-arg SWIFT_VERSION=6.2.
ARG SWIFT_VERSION=6.3

# ---- build --------------------------------------------------------------------------------------
FROM swift:${SWIFT_VERSION}-bookworm AS build
# The build dependencies of scripts/install-deps.sh: nghttp2 and zlib headers, jemalloc (the
# allocator apus links), pkg-config.
# (Debian stable's versions; not pinned, security updates come with a rebuild.)
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends libnghttp2-dev zlib1g-dev libjemalloc-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so this layer is cached while only sources change. (Package.resolved is
# optional: the glob copies it when the checkout has one.)
COPY Package.swift Package.resolve[d] ./
RUN swift package resolve
# Every folder Package.swift names (Sources, loadtest, examples, Tests...) must exist for the
# manifest to load, so the whole context is copied (.dockerignore drops build outputs and .git).
COPY . .
# The flags of scripts/build-release.sh, so the image runs the binary the benchmarks measured.
# --static-swift-stdlib: the Swift runtime and Foundation are linked in, so the runtime image
# needs only glibc, libstdc++, nghttp2, zlib and jemalloc. On x86_64, release builds target x86-64-v3
# (Haswell: AVX2 + FMA; see Package.swift), so the image needs such a CPU.
RUN swift build -c release --product apus --static-swift-stdlib --experimental-lto-mode=full \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/apus" /staging/usr/local/bin/apus \
    && /staging/usr/local/bin/apus --help > /dev/null

# ---- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends libnghttp2-14 zlib1g libjemalloc2 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 apus \
    && useradd --system --uid 10001 --gid apus --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin apus
COPY --from=build /staging/usr/local/bin/apus /usr/local/bin/apus
# The example repository. Owned by the server's user: Apus persists label moves and A/B splits
# to <model>/model.json.
COPY --chown=10001:10001 examples/models /models
# Numeric user, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /models
EXPOSE 8080
# SIGTERM (docker stop, Kubernetes) drains: readiness 503, GOAWAY, in-flight requests finish,
# exit 0 within --drain-timeout (25 s by default; docker stop's default grace is 10 s: use -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["apus"]
CMD ["serve", "--host", "0.0.0.0", "--model-repository", "/models"]
