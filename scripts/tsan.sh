#!/usr/bin/env bash
# The thread sanitizer over the concurrency-heavy Swift tests (issue 9, process faults).
#
#   scripts/tsan.sh [FILTER...]
#
# Builds the package and its tests with -sanitize=thread in a scratch directory of its own
# (.build/tsan, so the plain debug build the integration tests run stays as it is), then runs
# the tests whose names match the filters (regular expressions on Target.Class/method). Default
# filters: the repository (concurrent reloads, admin calls, draining while requests run), the
# hot-swap watcher (coalesced triggers), the dynamic batcher (inline vs pool execution) and its
# state machine, HTTP drain (NIO event loops, responders on other threads), the A/B outcome
# tracker and splitter; WakeupCoalescer is included for when it gets a test class of its own.
# A data race fails the run (halt_on_error). Bounded by TSAN_TIMEOUT seconds (default 3600).
#
# Then the sanitized server itself (`apus`, built in the same pass) takes the chaos test
# (Tests/integration/test_chaos.py: eight connections of mixed abuse on two event loops, with
# inference, batching and resets): the races a unit test cannot reach. Without jemalloc
# (APUS_SYSTEM_MALLOC=1, see Package.swift): TSan must own malloc. TSAN_SERVER=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh  # the headers the build needs, when missing
scratch=${TSAN_SCRATCH:-.build/tsan}
limit=${TSAN_TIMEOUT:-3600}
if [[ $# -gt 0 ]]; then
    filters=("$@")
else
    filters=(
        'ModelRepositoryTests'
        'RepositoryWatcherTests'
        'BatcherStateMachineTests'
        'DynamicBatcherTests'
        'WakeupCoalescer'
        'DrainTests'
        'OutcomeTrackerTests'
        'TrafficSplitTests'
        'VersionLifecycleTests'
    )
fi
filter_args=()
for f in "${filters[@]}"; do filter_args+=(--filter "$f"); done
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"
export APUS_SYSTEM_MALLOC=1
echo "tsan: building with --sanitize=thread into $scratch" >&2
timeout "$limit" swift build --build-tests --sanitize=thread --scratch-path "$scratch"
echo "tsan: running ${filters[*]}" >&2
timeout "$limit" swift test --sanitize=thread --skip-build --scratch-path "$scratch" "${filter_args[@]}"
if [[ "${TSAN_SERVER:-1}" != 0 ]]; then
    bin="$(swift build --sanitize=thread --scratch-path "$scratch" --show-bin-path)/apus"
    # A report ends the server (halt_on_error), which fails the test; the report is on the
    # server's stderr, which the test prints when it fails.
    echo "tsan: the chaos test against the sanitized server $bin" >&2
    APUS_BIN="$bin" timeout "$limit" python3 -m pytest -q Tests/integration/test_chaos.py
fi
echo "tsan: no data race reported" >&2
