#!/usr/bin/env bash
# Soak: apus serve under ~70% of its measured peak for a long run (default 10 minutes) with hot
# swaps and /metrics scrapes; RSS and open fds sampled every 10 s; a verdict at the end.
#
#   scripts/soak.sh [SECONDS]          (default 600; loopback only; exit 0 = PASS, 1 = FAIL)
#
# Needs the release binaries (.build/release/apus and .build/release/apus-loadtest); it does not
# build them. Knobs (environment): SOAK_BIN_DIR (default .build/release), SOAK_LOAD (fraction of
# peak, 0.7), SOAK_SWAP_EVERY (s, 15), SOAK_SCRAPE_EVERY (s, 3), SOAK_SAMPLE_EVERY (s, 10),
# SOAK_WARMUP (s, min(60, SECONDS/5)), SOAK_RSS_BOUND_MIB (32), SOAK_FD_SLACK (4),
# SOAK_PEAK_SECONDS (10), SOAK_MODEL_ZOO (zoo model bundled and swapped, rf_binary).
#
# Verdict: after the warm-up, the median RSS of the last quarter of the samples is within
# SOAK_RSS_BOUND_MIB of the first quarter's, the largest fd count of the last quarter is within
# SOAK_FD_SLACK of the first quarter's, the load generator saw zero failed requests (every status
# 200), and every swap and scrape succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-600}
bin_dir=${SOAK_BIN_DIR:-.build/release}
for tool in apus apus-loadtest; do
    if [[ ! -x "$bin_dir/$tool" ]]; then
        echo "soak: $bin_dir/$tool is missing. Build the release binaries first:" >&2
        echo "    scripts/build-release.sh apus apus-loadtest" >&2
        exit 2
    fi
done
exec python3 - "$duration" "$bin_dir" <<'PYTHON'
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

duration = float(sys.argv[1])
bin_dir = Path(sys.argv[2]).resolve()
env = os.environ.get
load_fraction = float(env("SOAK_LOAD", "0.7"))
swap_every = float(env("SOAK_SWAP_EVERY", "15"))
scrape_every = float(env("SOAK_SCRAPE_EVERY", "3"))
sample_every = float(env("SOAK_SAMPLE_EVERY", "10"))
warmup = float(env("SOAK_WARMUP", str(min(60.0, duration / 5))))
rss_bound = float(env("SOAK_RSS_BOUND_MIB", "32"))
fd_slack = int(env("SOAK_FD_SLACK", "4"))
peak_seconds = float(env("SOAK_PEAK_SECONDS", "10"))
zoo_name = env("SOAK_MODEL_ZOO", "rf_binary")
root = Path.cwd()
zoo = root / "Tests/ApusRuntimeTests/Fixtures/zoo" / zoo_name
model = "soak"

work = Path(tempfile.mkdtemp(prefix="apus-soak-"))
repo = work / "repo"
log_path = work / "apus.log"
children: list[subprocess.Popen] = []


def say(*parts) -> None:
    print(*parts, flush=True)


def cleanup() -> None:
    for child in children:
        if child.poll() is None:
            child.kill()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                pass


def http(method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PUT") else None)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rss_and_fds(pid: int) -> tuple[int, int]:
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


try:
    # -- repository: one model, version 1 bundled from the zoo; a label the load goes through --
    subprocess.run([str(bin_dir / "apus"), "bundle", "create", "--onnx", str(zoo / "model.onnx"), "--reference", str(zoo / "inputs.npy"),
                    "--out", str(repo / model / "1"), "--name", model, "--version", "1"], check=True, capture_output=True, timeout=120)
    (repo / model / "model.json").write_text(json.dumps({"version_policy": {"latest": 2}, "labels": {"stable": 1}}))
    template = work / "template"
    shutil.copytree(repo / model / "1", template)

    # -- server ---------------------------------------------------------------------------------
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(log_path, "w")
    server = subprocess.Popen([str(bin_dir / "apus"), "serve", "--host", "127.0.0.1", "--port", str(port), "--model-repository", str(repo),
                               "--log-level", "notice"], stdout=subprocess.DEVNULL, stderr=log)
    children.append(server)
    ready = False
    deadline = time.monotonic() + 60
    while not ready and time.monotonic() < deadline and server.poll() is None:
        try:
            ready = http("GET", "/v2/health/ready", timeout=2)[0] == 200
        except OSError:
            time.sleep(0.1)
    if not ready:
        raise SystemExit(f"soak: the server did not become ready on port {port}:\n{log_path.read_text()}")
    say(f"soak: apus pid {server.pid} on 127.0.0.1:{port}, repository {repo}, {duration:.0f}s at {load_fraction:.0%} of peak")

    loadtest = [str(bin_dir / "apus-loadtest"), "--port", str(port), "--model", model, "--version", "stable",
                "--connections", "4", "--streams", "32", "--quiet", "--json", "-"]

    # -- peak: closed loop --------------------------------------------------------------------
    peak_run = subprocess.run(loadtest + ["--warmup", "2", "--duration", str(peak_seconds)], capture_output=True, text=True,
                              timeout=peak_seconds + 120)
    peak_report = json.loads(peak_run.stdout)["phases"][0]["report"]
    peak = float(peak_report["throughput_rps"])
    rate = max(1.0, peak * load_fraction)
    say(f"soak: peak {peak:.0f} req/s (closed loop, 4 connections x 32 streams, {peak_seconds:.0f}s; failed {peak_report['failed']}); "
        f"soak rate {rate:.0f} req/s")

    # -- the soak ------------------------------------------------------------------------------
    report_path = work / "soak-report.json"
    load = subprocess.Popen(loadtest[:-1] + [str(report_path), "--rate", f"{rate:.0f}", "--duration", str(duration)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    children.append(load)
    started = time.monotonic()
    next_swap, next_scrape, next_sample = started + swap_every, started, started
    version = 1
    swaps_ok, swap_failures = 0, []
    scrapes_ok, scrape_failures = 0, []
    samples: list[tuple[float, int, int]] = []
    last_metrics = ""
    say(f"{'t(s)':>6} {'rss(MiB)':>9} {'fds':>5} {'conns':>6} {'requests':>10} {'swaps':>6} {'scrapes':>8} {'version':>8}")
    while time.monotonic() - started < duration + 5 and load.poll() is None:
        now = time.monotonic()
        if server.poll() is not None:
            raise SystemExit(f"soak: the server exited with {server.returncode} after {now - started:.0f}s:\n{log_path.read_text()[-4000:]}")
        if now >= next_scrape:
            next_scrape += scrape_every
            try:
                status, body = http("GET", "/metrics")
                if status == 200:
                    scrapes_ok += 1
                    last_metrics = body.decode()
                else:
                    scrape_failures.append(f"t={now - started:.0f}s status {status}")
            except OSError as error:
                scrape_failures.append(f"t={now - started:.0f}s {error!r}")
        if now >= next_swap and now - started < duration - swap_every / 2:
            next_swap += swap_every
            new = version + 1
            staging = repo / model / f".incoming-{new}"
            shutil.copytree(template, staging)
            manifest = json.loads((staging / "manifest.json").read_text())
            manifest["version"] = new
            (staging / "manifest.json").write_text(json.dumps(manifest))
            staging.rename(repo / model / str(new))  # atomic: the scan sees all of it or nothing
            status, body, ready, moved, moved_body = 0, b"", False, 0, b""
            try:
                status, body = http("POST", f"/v2/repository/models/{model}/load", timeout=60)
                for _ in range(100):
                    _, index = http("GET", "/v2/repository/index")
                    states = {e.get("version"): e.get("state") for e in json.loads(index)}
                    if states.get(str(new)) in ("READY", "FAILED"):
                        ready = states.get(str(new)) == "READY"
                        break
                    time.sleep(0.1)
                moved, moved_body = http("PUT", f"/v2/repository/models/{model}/labels/stable", {"version": new})
            except OSError as error:
                body = repr(error).encode()
            if status == 200 and ready and moved == 200:
                swaps_ok += 1
                version = new
                for old in repo.joinpath(model).iterdir():  # keep the disk bounded: versions out of the policy go
                    if old.name.isdigit() and int(old.name) < new - 2:
                        shutil.rmtree(old)
            else:
                swap_failures.append(f"version {new}: load {status} {body[:100]!r}, ready {ready}, label {moved} {moved_body[:100]!r}")
        if now >= next_sample:
            next_sample += sample_every
            rss, fds = rss_and_fds(server.pid)
            samples.append((now - started, rss, fds))
            say(f"{now - started:6.0f} {rss / 2**20:9.1f} {fds:5d} {metric(last_metrics, 'apus_connections_open'):6.0f} "
                f"{metric(last_metrics, 'apus_requests_total'):10.0f} {swaps_ok:6d} {scrapes_ok:8d} {version:8d}")
        time.sleep(0.05)
    try:
        _, load_err = load.communicate(timeout=duration + 120)
    except subprocess.TimeoutExpired:
        load.kill()
        _, load_err = load.communicate()
    report = json.loads(report_path.read_text())["phases"][0]["report"] if report_path.exists() else None

    # -- verdict ----------------------------------------------------------------------------------
    problems = []
    steady = [s for s in samples if s[0] >= warmup]
    if len(steady) < 4:
        problems.append(f"only {len(steady)} samples after the {warmup:.0f}s warm-up (run longer)")
        first = last = steady
    else:
        quarter = max(1, len(steady) // 4)
        first, last = steady[:quarter], steady[-quarter:]
    rss_first = statistics.median(s[1] for s in first) / 2**20 if first else 0
    rss_last = statistics.median(s[1] for s in last) / 2**20 if last else 0
    fd_first = max((s[2] for s in first), default=0)
    fd_last = max((s[2] for s in last), default=0)
    if rss_last - rss_first > rss_bound:
        problems.append(f"RSS grew {rss_last - rss_first:.1f} MiB (median first quarter {rss_first:.1f}, last quarter {rss_last:.1f}; bound {rss_bound:.0f})")
    if fd_last - fd_first > fd_slack:
        problems.append(f"open fds grew from {fd_first} to {fd_last} (slack {fd_slack})")
    if report is None:
        problems.append(f"no load report; apus-loadtest said: {load_err[-2000:]}")
    else:
        if report["failed"] != 0 or set(report["statuses"]) - {"200"}:
            problems.append(f"failed requests: {report['failed']}, statuses {report['statuses']}, errors {report['errors']}")
    if swap_failures:
        problems.append(f"{len(swap_failures)} swaps failed: {swap_failures[:3]}")
    if scrape_failures:
        problems.append(f"{len(scrape_failures)} scrapes failed: {scrape_failures[:3]}")
    say("")
    say(f"soak: {duration:.0f}s at {rate:.0f} req/s ({load_fraction:.0%} of a {peak:.0f} req/s peak), warm-up {warmup:.0f}s excluded")
    if report is not None:
        lat = report["latency"]
        say(f"soak: requests {report['requests']} (failed {report['failed']}, statuses {report['statuses']}), "
            f"throughput {report['throughput_rps']:.0f} req/s, p50 {lat.get('p50_us', 0):.0f}us p99 {lat.get('p99_us', 0):.0f}us max {lat.get('max_us', 0):.0f}us, "
            f"versions served {sorted(report['versions'], key=int) if report.get('versions') else '-'}")
    say(f"soak: swaps {swaps_ok} ok / {len(swap_failures)} failed, scrapes {scrapes_ok} ok / {len(scrape_failures)} failed")
    say(f"soak: RSS median first quarter {rss_first:.1f} MiB, last quarter {rss_last:.1f} MiB (delta {rss_last - rss_first:+.1f}, bound {rss_bound:.0f}); "
        f"fds max first quarter {fd_first}, last quarter {fd_last} (slack {fd_slack})")
    if problems:
        say("soak: FAIL")
        for problem in problems:
            say(f"  - {problem}")
        say(f"soak: server log: {log_path}")
        sys.exit(1)
    say("soak: PASS")
    shutil.rmtree(work, ignore_errors=True)
finally:
    cleanup()
PYTHON
