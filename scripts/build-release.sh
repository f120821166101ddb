#!/usr/bin/env bash
# The one release build of the repo's tools: scripts/build-release.sh [PRODUCT...] (default: apus).
# Linked like the Docker image (--static-swift-stdlib: the Swift runtime and Foundation inside the
# binary), so what the benchmarks measure is what ships. Static linking also spares every retain
# and release (a quarter of a request's CPU) the PLT hop into libswiftCore.so: `apus bench-route`
# logreg, 14 interleaved pairs over two runs, medians 3807 -> 3486 ns and 4735 -> 3962 ns. Every
# script builds through here: SwiftPM rebuilds everything when the flag changes between builds.
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
    swift build -c release "${static[@]}" --product "$product" 2>&1 \
        | { grep -v "warning: the use of \`mktemp' is dangerous" || true; } >&2
done
