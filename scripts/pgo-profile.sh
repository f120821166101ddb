#!/usr/bin/env bash
# Records tools/pgo/apus.profdata, the profile release builds of the serving modules are optimized
# with (see Package.swift): scripts/pgo-profile.sh. Run it after changes to the request path or
# a toolchain upgrade (a profile from a newer LLVM than the compiler's is unreadable; an older
# one only leaves changed functions unoptimized by it). About 10 minutes on 2 cores.
#
# 1. Builds apus and apus-loadtest instrumented (APUS_PGO=generate). With a toolchain other than
#    Swift 6.3, move the `#if compiler` gate in Package.swift to it as well.
# 2. Serves the bench-serving repository (logreg, rf churn, MLP batched and max_batch_size 1) and
#    drives what the benchmarks and users send: batch-1 protobuf over h2c on every model (the
#    bulk), health checks, KServe JSON over h2c and HTTP/1.1, the /predict route, metrics, and
#    apus-loadtest (the client library's paths). Loopback only, every run bounded.
# 3. Merges the raw profiles with the toolchain's own llvm-profdata (its format must match the
#    compiler's LLVM) and rebuilds the release binaries with the new profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
work=$(mktemp -d)
server=""
trap 'if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
profdata="$(dirname "$(readlink -f "$(command -v swift)")")/llvm-profdata"
[[ -x "$profdata" ]] || { echo "llvm-profdata not found beside swift ($profdata)" >&2; exit 1; }

APUS_PGO=generate scripts/build-release.sh apus apus-loadtest
export LLVM_PROFILE_FILE="$work/raw/%p-%m.profraw"

python3 scripts/bench-serving.py --make-repo "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 .build/release/apus serve --port "$port" --threads 1 --model-repository "$work/repo" --log-level warning &
server=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/health/ready" && break; sleep 0.2; done
base="http://127.0.0.1:$port"
pb=(-d "$work/body-1.pb" -H "content-type: application/x-protobuf")
load() { taskset -c 1 h2load "$@" | grep -E "^finished in|succeeded" | tr '\n' ' '; echo; }
for model in logreg mlp mlp1 churn; do
    load -c 4 -m 32 -D 3 "${pb[@]}" "$base/v2/models/$model/infer"
done
load -c 1 -m 1 -D 1 "${pb[@]}" "$base/v2/models/mlp/infer"
load -c 2 -m 32 -D 1 "$base/v2/health/live"
row=$(python3 -c 'import json; print(json.dumps([1.0] * 20))')
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,20],\"datatype\":\"FP32\",\"data\":$row}]}" > "$work/infer.json"
echo "{\"features\":$row}" > "$work/predict.json"
load -c 4 -m 16 -D 1 -d "$work/infer.json" -H "content-type: application/json" "$base/v2/models/logreg/infer"
load --h1 -c 4 -D 1 -d "$work/infer.json" -H "content-type: application/json" "$base/v2/models/churn/infer"
load --h1 -c 2 -D 1 -d "$work/predict.json" -H "content-type: application/json" "$base/predict/churn"
curl -sf "$base/metrics" > /dev/null
curl -sf "$base/v2/models/churn" > /dev/null
taskset -c 1 .build/release/apus-loadtest --port "$port" --model churn --connections 2 --streams 16 --duration 2 --quiet
taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 2 --streams 16 --duration 1 --quiet
kill -TERM "$server"
wait "$server" || true
server=""

mkdir -p tools/pgo
"$profdata" merge -o tools/pgo/apus.profdata "$work"/raw/*.profraw
ls -l tools/pgo/apus.profdata
# The release binaries, optimized with the new profile.
scripts/build-release.sh apus apus-loadtest
