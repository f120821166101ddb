#!/usr/bin/env bash
# The test command (README, .ci/run): installs missing packages, builds, runs the Swift tests,
# the concurrent ones again under the thread sanitizer, then the integration tests against the
# real binary over loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
# The committed generated protobuf code must match proto-spec/ (regenerated into a temp dir).
scripts/gen-proto.sh --check
swift test --skip-build
# The thread sanitizer over the concurrency-heavy tests (its own build in .build/tsan).
scripts/tsan.sh
APUS_BIN="$PWD/.build/debug/apus" python3 -m pytest -q Tests/integration
