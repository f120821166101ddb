#!/usr/bin/env bash
# The one release build of the repo's tools: scripts/build-release.sh [PRODUCT...] (default: apus).
# Linked like the Docker image (--static-swift-stdlib: the Swift runtime and Foundation inside the
# binary), so what the benchmarks measure is what ships. Static linking also spares every retain
# and release (a quarter of a request's CPU) the PLT hop into libswiftCore.so: `apus bench-route`
# logreg, 14 interleaved pairs over two runs, medians 3807 -> 3486 ns and 4735 -> 3962 ns. Every
# script builds through here: SwiftPM rebuilds everything when the flag changes between builds.
# Full link-time optimization (`--experimental-lto-mode=full`, as in the Dockerfile) inlines
# across module boundaries, swift-nio's included, which cross-module optimization alone does not:
# callgrind, 10,000 batch-1 protobuf requests on one event loop, logreg 34,685 -> 33,559
# instructions per request (-3.2%) and the batched MLP 36,364 -> 35,117; logreg server CPU per
# request in alternated 3 s h2load rounds (medians): 4.08 -> 3.78 us over 16 rounds each, 4.88 ->
# 3.99 us over 8 more in a noisier hour. It costs build time: 4.6 min for `apus` from scratch on
# 2 cores, and `scripts/serve.sh` in a fresh clone was ready after 314 s instead of 179 s.
set -euo pipefail
cd "$(dirname "$0")/.."
# The headers it links against (libnghttp2-dev, zlib1g-dev...), so every benchmark script works on
# a fresh machine, not only after the README's serve or test command. A no-op when present.
scripts/install-deps.sh
static=()
[[ "$(uname -s)" == Linux ]] && static=(--static-swift-stdlib)
for product in "${@:-apus}"; do
    # The toolchain's static Foundation calls mktemp (in its own temporary-file code, which Apus
    # never uses), and glibc makes the linker warn about that on every static link: dropped here
    # so a build prints only what concerns this project. Failures still fail (pipefail).
    swift build -c release "${static[@]}" --experimental-lto-mode=full --product "$product" 2>&1 \
        | { grep -v "warning: the use of \`mktemp' is dangerous" || true; } >&2
done
