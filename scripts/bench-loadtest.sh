#!/usr/bin/env bash
# apus-loadtest against h2load, same server, same run (issue: harness >= 0.8x h2load's rate on one
# core; latency percentiles within 10% at equal offered load). Server pinned to core 0, the
# generators to core 1, loopback only, each run bounded.   scripts/bench-loadtest.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
scripts/install-deps.sh --bench
scripts/build-release.sh apus apus-loadtest
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 .build/release/apus serve --port "$port" --threads 1 --log-level warning --model-repository examples/models &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/health/live" && break; sleep 0.1; done
url="http://127.0.0.1:$port/v2/health/live"
rounds=${ROUNDS:-3}
echo "== saturation, closed loop, 4 connections x 32 streams, ${seconds}s each, $rounds rounds, the two tools alternated"
# The machine's speed drifts between runs, so the tools take turns and the median of the
# per-round ratios is reported.
ratios=()
for i in $(seq "$rounds"); do
  h2=$(taskset -c 1 h2load -c 4 -m 32 -D "$seconds" --warm-up-time 1 "$url" | grep -oE 'finished in [^,]+, [0-9.]+ req/s' | grep -oE '[0-9.]+ req/s' | cut -d' ' -f1)
  lt=$(taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 32 --warmup 1 --duration "$seconds" --quiet --json - 2>/dev/null \
       | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["phases"][0]["report"]["throughput_rps"])')
  ratio=$(python3 -c "print(f'{float(\"$lt\")/float(\"$h2\"):.3f}')")
  ratios+=("$ratio")
  python3 -c "print(f'round $i: h2load {float(\"$h2\"):.0f} req/s, apus-loadtest {float(\"$lt\"):.0f} req/s, ratio {float(\"$ratio\"):.2f}')"
done
python3 -c "import statistics, sys; v=[float(x) for x in sys.argv[1:]]; print(f'median ratio apus-loadtest/h2load at saturation: {statistics.median(v):.2f} (min {min(v):.2f}, max {max(v):.2f})')" "${ratios[@]}"
# Steadier on a noisy machine: each generator's own CPU time per request for a fixed count
# (what limits a generator on one core).
n=${COUNT:-400000}
cpu() { /usr/bin/time -f '%U %S' -o "$1" "${@:2}" >/dev/null; awk -v n="$n" '{printf "%.2f", ($1 + $2) / n * 1e6}' "$1"; }
tf=$(mktemp)
h2cpu=$(cpu "$tf" taskset -c 1 h2load -c 4 -m 32 -n "$n" "$url")
ltcpu=$(cpu "$tf" taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections 4 --streams 32 --requests "$n" --quiet)
rm -f "$tf"
python3 -c "print(f'generator CPU per request ({$n} requests): h2load {$h2cpu}us, apus-loadtest {$ltcpu}us, h2load/apus-loadtest {$h2cpu/$ltcpu:.2f}')"
rate=${RATE:-5000}; conns=${CONNS:-1}
echo "== latency at equal offered load: $rate req/s on $conns connection(s) x 1 stream, $rounds rounds, the two tools alternated"
# One stream per connection: each request goes out when the previous answer is back, so both
# tools send the same sequence. h2load's --rps timer fires every max(10 ms, 1/rps) (h2load.cc:
# rps_watcher.repeat = std::max(0.01, 1. / config.rps)) and makes the requests due since the last
# firing pending; apus-loadtest sends on the same grid with --timer-resolution-us 10000 (its
# default, 20 us, spaces sends evenly). With several connections the tools' own event loops
# shape when the server sees each request (h2load makes about five syscalls per answer,
# apus-loadtest two), so the server's latency itself differs between the runs: the wire
# latencies below show it. h2load's per-answer log goes to tmpfs.
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
# With tcpdump (and the right to capture on lo), each run is also timed on the wire: from the
# request's HEADERS packet to the answer's END_STREAM packet, which neither tool's loop is in.
capture() { local out=$1; shift
  if [ -n "${NO_WIRE:-}" ] || ! command -v tcpdump >/dev/null; then "$@"; return; fi
  tcpdump -i lo -s 0 -B 65536 --time-stamp-precision=nano -w "$out" "tcp port $port" 2>/dev/null & local dump=$!
  sleep 0.5; "$@"; sleep 0.3; kill -INT $dump; wait $dump 2>/dev/null || true; }
for i in $(seq "$rounds"); do
  capture "$work/run-h2-$i.pcap" taskset -c 1 h2load -c "$conns" -m 1 --rps $((rate / conns)) -D "$seconds" --warm-up-time 1 --log-file "$work/run-h2-$i.log" "$url" >/dev/null
  capture "$work/run-lt-$i.pcap" taskset -c 1 .build/release/apus-loadtest --port "$port" --path /v2/health/live --connections "$conns" --streams 1 --rate "$rate" \
    --timer-resolution-us 10000 --warmup 1 --duration "$seconds" --quiet --json "$work/run-lt-$i.json" >/dev/null
done
# Percentiles of each pair of runs (run-h2-N.log from h2load, run-lt-N.json from apus-loadtest),
# with the wire's when a capture run-...pcap exists; the median ratio over the rounds. (Running
# both tools at the same moment was tried to share the machine's stalls: on one core they delay
# each other's reads, which biased the comparison more than the stalls did.)
python3 - "$work" "$rounds" "$port" <<'PY'
import json, os, statistics, subprocess, sys
work, rounds, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def h2load(path):
    rows = [l.split("\t") for l in open(path) if l.strip()]
    warm = min(int(r[0]) for r in rows) + 1_000_000  # its log includes the warm-up second
    d = sorted(int(r[2]) for r in rows if int(r[0]) >= warm and r[1] == "200")
    out = {f"p{p}_us": d[min(len(d) - 1, int(p / 100 * len(d)))] for p in (50, 90, 99)}
    out["mean_us"] = sum(d) / len(d)
    return out
def wire(path):
    if not os.path.exists(path): return None
    r = subprocess.run([sys.executable, os.path.join("scripts", "wire-latency.py"), path, port, "--skip-seconds", "1.5", "--json"], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None
keys = ("p50_us", "p90_us", "p99_us", "mean_us")
ratios = {k: [] for k in keys}
# Each tool's own share: its percentile minus the wire's in the same run (the server's stalls,
# which this machine has, move both numbers of a run together).
own = {"h2load": {k: [] for k in keys}, "apus-loadtest": {k: [] for k in keys}}
print("microseconds from the HEADERS frame's serialization to the answer (h2load: its stream-close callback; apus-loadtest's service time: the socket read that completed it)")
print(f"{'round':>5} {'':>4} {'h2load':>8} {'apus-lt':>8} {'ratio':>6}   {'wire under h2load':>17} {'wire under apus-lt':>18}")
for i in range(1, rounds + 1):
    a = h2load(f"{work}/run-h2-{i}.log")
    b = json.load(open(f"{work}/run-lt-{i}.json"))["phases"][0]["report"]["service_time"]
    wa, wb = wire(f"{work}/run-h2-{i}.pcap"), wire(f"{work}/run-lt-{i}.pcap")
    for k in keys:
        ratios[k].append(b[k] / a[k])
        if wa and wb:
            own["h2load"][k].append(a[k] - wa[k])
            own["apus-loadtest"][k].append(b[k] - wb[k])
        w = f"{wa[k]:>17.1f} {wb[k]:>18.1f}" if wa and wb else ""
        print(f"{i:>5} {k[:-3]:>4} {a[k]:>8.1f} {b[k]:>8.1f} {b[k] / a[k]:>6.2f}   {w}")
print(f"median ratio apus-loadtest/h2load over the rounds: " + ", ".join(f"{k[:-3]} {statistics.median(v):.2f}" for k, v in ratios.items()))
if own["h2load"]["p50_us"]:
    for tool, values in own.items():
        print(f"{tool} over the wire (its number minus the wire's, median over the rounds, us): " + ", ".join(f"{k[:-3]} {statistics.median(v):+.1f}" for k, v in values.items()))
PY
