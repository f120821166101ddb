#!/usr/bin/env bash
# Instructions per served request, counted by callgrind: the stable measure of serving overhead
# on a noisy machine (wall-clock rates here swing by 2x between runs; instruction counts move by
# well under 1%). Compare two commits by running this on each.
#
#   scripts/callgrind-serving.sh [requests per model, default 20000] [models...]
#
# Models (the bench-serving repository): logreg (logreg_binary), churn (rf_binary), mlp
# (mlp_3class, batches of up to 64), mlp1 (mlp_3class, max_batch_size 1). Default: logreg churn.
# Each runs batch-1 protobuf requests from `h2load -c4 -m32` against one event loop, after 2000
# warm-up requests. `--inline-budget-us` is raised so batches run on the event loop as they do
# at full speed (under valgrind everything is ~50x slower, which would otherwise send them to
# the workers). Prints one JSON line per model. Load goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
shift || true
MODELS=("$@")
[[ ${#MODELS[@]} -eq 0 ]] && MODELS=(logreg churn)

scripts/install-deps.sh --bench
scripts/build-release.sh apus >&2
WORK=$(mktemp -d)
trap 'pkill -f "$WORK/bin/apus serve" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# valgrind 3.19 cannot read the DWARF 5 debug info Swift emits; the symbol table is enough.
mkdir "$WORK/bin"
cp .build/release/apus "$WORK/bin/apus"
strip --strip-debug "$WORK/bin/apus"
python3 scripts/bench-serving.py --make-repo "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# valgrind 3.19 crashes on libdispatch's read-only sigsuspend mask: see the file.
cc -O2 -shared -fPIC -o "$WORK/sigsuspend.so" scripts/valgrind-sigsuspend.c
for model in "${MODELS[@]}"; do
    OUT="$WORK/callgrind.$model"
    LD_PRELOAD="$WORK/sigsuspend.so" valgrind --tool=callgrind --callgrind-out-file="$OUT" "$WORK/bin/apus" serve --port "$PORT" --threads 1 \
        --inline-budget-us 1000000 --model-repository "$WORK/repo" --log-level warning >"$WORK/valgrind.log" 2>&1 &
    VG=$!
    for _ in $(seq 120); do
        curl -s "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null 2>&1 && break
        sleep 1
    done
    URL="http://127.0.0.1:$PORT/v2/models/$model/infer"
    H2=(-c4 -m32 -d "$WORK/body-1.pb" -H "content-type: application/x-protobuf")
    h2load -n 2000 "${H2[@]}" "$URL" >/dev/null
    callgrind_control -z "$VG" >/dev/null 2>&1
    DONE=$(h2load -n "$N" "${H2[@]}" "$URL" | grep -oP '(\d+)(?= succeeded)')
    callgrind_control -d "$VG" >/dev/null 2>&1
    kill "$VG"
    wait "$VG" 2>/dev/null || true
    TOTAL=$(callgrind_annotate "$OUT.1" 2>/dev/null | grep "PROGRAM TOTALS" | awk '{print $1}' | tr -d ,)
    python3 -c "import json; print(json.dumps({'model': '$model', 'requests': $DONE, 'instructions_per_request': round($TOTAL / $DONE)}))"
done
