#!/usr/bin/env bash
# apus-loadtest against h2load, same server, same run (issue: harness >= 0.8x h2load's rate on one
# core; latency percentiles within 10% at equal offered load). Server pinned to core 0, the
# generators to core 1, loopback only, each run bounded.   scripts/bench-loadtest.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
swift build -c release --product apus --product apus-loadtest >&2 || { swift build -c release --product apus >&2; swift build -c release --product apus-loadtest >&2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 .build/release/apus serve --port "$port" --threads 1 --log-level warning --model-repository examples/models &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/health/live" && break; sleep 0.1; done
url="http://127.0.0.1:$port/v2/health/live"
echo "== saturation, closed loop, 4 connections x 32 streams, ${seconds}s each"
h2=$(taskset -c 1 h2load -c 4 -m 32 -D "$seconds" --warm-up-time 1 "$url" | grep -oE 'finished in [^,]+, [0-9.]+ req/s' | grep -oE '[0-9.]+ req/s' | cut -d' ' -f1)
lt=$(taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 32 --warmup 1 --duration "$seconds" --quiet --json - \
     | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["phases"][0]["report"]["throughput_rps"])')
python3 -c "print(f'h2load {float(\"$h2\"):.0f} req/s, apus-loadtest {float(\"$lt\"):.0f} req/s, ratio {float(\"$lt\")/float(\"$h2\"):.2f}')"
rate=${RATE:-20000}
echo "== equal offered load: $rate req/s (h2load --rps per client x 4 clients; apus-loadtest --rate), 1 stream per connection"
taskset -c 1 h2load -c 4 -m 1 --rps $((rate / 4)) -D "$seconds" --warm-up-time 1 "$url" | grep -E "time for request|finished"
taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 1 --rate "$rate" --warmup 1 --duration "$seconds" --quiet
