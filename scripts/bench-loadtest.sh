#!/usr/bin/env bash
# apus-loadtest against h2load, same server, same run (issue: harness >= 0.8x h2load's rate on one
# core; latency percentiles within 10% at equal offered load). Server pinned to core 0, the
# generators to core 1, loopback only, each run bounded.   scripts/bench-loadtest.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
swift build -c release --product apus >&2; swift build -c release --product apus-loadtest >&2
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
# Steadier on a noisy machine: each generator's own CPU time per request for a fixed count.
n=${COUNT:-400000}
cpu() { /usr/bin/time -f '%U %S' -o "$1" "${@:2}" >/dev/null; awk -v n="$n" '{printf "%.2f", ($1 + $2) / n * 1e6}' "$1"; }
tf=$(mktemp)
h2cpu=$(cpu "$tf" taskset -c 1 h2load -c 4 -m 32 -n "$n" "$url")
ltcpu=$(cpu "$tf" taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 32 --requests "$n" --quiet)
rm -f "$tf"
python3 -c "print(f'generator CPU per request ({$n} requests): h2load {$h2cpu}us, apus-loadtest {$ltcpu}us, h2load/apus-loadtest {$h2cpu/$ltcpu:.2f}')"
rate=${RATE:-20000}
echo "== equal offered load: $rate req/s, 4 connections x 1 stream (h2load --rps per client; apus-loadtest --rate)"
# h2load's --rps timer fires every max(10 ms, 1/rps) (h2load.cc: rps_watcher.repeat =
# std::max(0.01, 1. / config.rps)); each firing makes the requests due since the last one
# pending, and with one stream per connection they go out one after another as answers come
# back (printed below from its log). apus-loadtest sends the same way with
# --timer-resolution-us 10000; its default (20 us) spaces sends evenly. h2load writes one log
# line (a write syscall) per answer: its log goes to tmpfs to keep that cost small.
log=$(mktemp -p /dev/shm 2>/dev/null || mktemp)
taskset -c 1 h2load -c 4 -m 1 --rps $((rate / 4)) -D "$seconds" --warm-up-time 1 --log-file "$log" "$url" | grep -E "time for request|finished"
taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 1 --rate "$rate" --timer-resolution-us 10000 --warmup 1 --duration "$seconds" --quiet --json "$log.json" >/dev/null
# h2load measures from the actual send, so compare with apus-loadtest's service time (also from
# the actual send); apus-loadtest's headline latency counts from the intended send time.
python3 - "$log" "$log.json" <<'PY'
import json, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
rows.sort(key=lambda r: int(r[0]))
warm = int(rows[0][0]) + 1_000_000 if rows else 0
d = sorted(int(r[2]) for r in rows if int(r[0]) >= warm and r[1] == "200")
def pct(p): return d[min(len(d) - 1, int(p / 100 * len(d)))]
starts = [int(r[0]) for r in rows if int(r[0]) >= warm]
close = sum(1 for a, b in zip(starts, starts[1:]) if b - a < 50)
pauses = [b - a for a, b in zip(starts, starts[1:]) if b - a >= 500]
print(f"h2load sends: {close / max(1, len(starts) - 1):.0%} start within 50 us of the previous one (bursts), mean gap {(starts[-1] - starts[0]) / max(1, len(starts) - 1):.0f} us, "
      f"{len(pauses)} pauses of 0.5 ms or more (median {sorted(pauses)[len(pauses) // 2] if pauses else 0} us) between bursts")
report = json.load(open(sys.argv[2]))["phases"][0]["report"]
mine = report["service_time"]
print(f"{'':>6} {'h2load':>10} {'apus-loadtest':>14} {'ratio':>6}   (microseconds, from the actual send; {len(d)} h2load samples)")
for p in (50, 90, 99):
    ours = mine[f"p{p}_us"]
    print(f"{'p' + str(p):>6} {pct(p):>10.1f} {ours:>14.1f} {ours / max(pct(p), 1e-9):>6.2f}")
print(f"{'mean':>6} {sum(d) / len(d):>10.1f} {mine['mean_us']:>14.1f} {mine['mean_us'] / (sum(d) / len(d)):>6.2f}")
lat = report["latency"]
print(f"apus-loadtest from the intended send time: p50 {lat['p50_us']:.1f}us p90 {lat['p90_us']:.1f}us p99 {lat['p99_us']:.1f}us")
PY
rm -f "$log" "$log.json"
