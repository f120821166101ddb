"""deploy/haproxy/haproxy.cfg in front of three real Apus replicas on loopback: h2c on both sides,
a rolling restart under load that fails no request, and A/B stickiness across replicas.

HAProxy runs the shipped config file unchanged: its addresses are environment variables
(`APUS_LB_BIND`, `APUS_LB_STATS_BIND`, `APUS_1..3`) set here to loopback ports.
`scripts/install-deps.sh --test` installs haproxy."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from apus_net import free_ports
from conftest import ApusServer, PACKAGE_ROOT, apus_binary, bundle, json_lines

ZOO = PACKAGE_ROOT / "Tests/ApusRuntimeTests/Fixtures/zoo"
HAPROXY_CFG = PACKAGE_ROOT / "deploy/haproxy/haproxy.cfg"
REPLICAS = 3
# Long enough for three restarts on a loaded CI machine: each replica takes 0.5-4 s to come back
# (model loading, readiness) plus HAProxy's check interval and the 1 s settle after it.
LOAD_SECONDS = 30


def loadtest_binary() -> Path:
    return apus_binary().parent / "apus-loadtest"




@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Two versions of `churn` and a 90/10 split, as in test_inference.py."""
    repo = tmp_path_factory.mktemp("lb-repo")
    bundle(repo, "churn", 1, "rf_binary")
    bundle(repo, "churn", 2, "xgb_binary")
    (repo / "churn" / "model.json").write_text(json.dumps({
        "version_policy": "all", "labels": {"stable": 1, "canary": 2},
        "split": {"salt": "churn-2026", "variants": [{"name": "stable", "label": "stable", "weight": 9000},
                                                     {"name": "canary", "label": "canary", "weight": 1000}]}}))
    return repo


class HAProxy:
    def __init__(self, config: Path, env: dict[str, str], log: Path, stats_port: int):
        self.config, self.env, self.log_path, self.stats_port = config, env, log, stats_port
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    def start(self) -> "HAProxy":
        check = subprocess.run(["haproxy", "-c", "-f", str(self.config)], env=self.env, capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self._log_file = open(self.log_path, "wb")
        # -db: stay in the foreground; the config logs to stdout (one line per request).
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.config)], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT)
        return self

    def servers(self) -> dict[str, str]:
        """Server name -> "status/last check" ("UP/L7OK", "DOWN/L4CON", "DOWN 1/2/L7OK", ...) from
        the stats page's CSV. A server is "UP" before its first check: "UP/L7OK" is a passed check."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=2).text.lstrip("# ")
        return {row["svname"]: f'{row["status"]}/{row["check_status"].removeprefix("* ")}' for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "apus" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, server: str, status: str, timeout: float) -> float:
        """Seconds until `server`'s "status/last check" starts with `status` (bounded)."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < timeout:
            assert self.proc is not None and self.proc.poll() is None, f"haproxy exited {self.proc.returncode}:\n{self.log()}"
            try:
                seen = self.servers().get(server)
            except httpx.HTTPError:
                seen = None
            if seen is not None and seen.startswith(status):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"haproxy did not see {server} {status} within {timeout}s (last: {seen})")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log_file is not None:
            self._log_file.close()


@pytest.fixture
def cluster(request, repo, tmp_path):
    """Three replicas on fixed loopback ports (restarts reuse them) behind the shipped config."""
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (scripts/install-deps.sh --test installs it)")
    *ports, lb_port, stats_port = free_ports(REPLICAS + 2)
    started: list[ApusServer] = []

    access_logs = [tmp_path / f"access-{i}.log" for i in range(REPLICAS)]

    def start_replica(index: int) -> ApusServer:
        server = ApusServer(apus_binary(), repo, ["--drain-timeout", "10", "--access-log"], port=ports[index], stdout=access_logs[index])
        started.append(server)
        server.start()
        assert server.port == ports[index]
        return server

    replicas = [start_replica(i) for i in range(REPLICAS)]
    env = {**os.environ, "APUS_LB_BIND": f"127.0.0.1:{lb_port}", "APUS_LB_STATS_BIND": f"127.0.0.1:{stats_port}",
           **{f"APUS_{i + 1}": f"127.0.0.1:{port}" for i, port in enumerate(ports)}}
    lb = HAProxy(HAPROXY_CFG, env, tmp_path / "haproxy.log", stats_port).start()
    state = {"replicas": replicas, "ports": ports, "lb_port": lb_port, "lb": lb, "start_replica": start_replica, "access_logs": access_logs}
    try:
        for i in range(REPLICAS):
            lb.wait_status(f"apus{i + 1}", "UP/L7OK", 15)
        yield state
    finally:
        lb.stop()
        for server in started:
            server.kill()
        if any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call")):
            # Everything but plain 200s that were not retried (retries field "/0 " before the queues).
            lines = [l for l in lb.log().splitlines() if not re.search(r" 200 \d+ - - ---- \d+/\d+/\d+/\d+/0 ", l)]
            print(f"\n--- haproxy log: {len(lines)} lines that are not a plain 200 (last 300) ---")
            print("\n".join(lines[-300:]))
            for server in started:
                print(f"\n--- apus log (port {server.port}; exit {server.proc.returncode if server.proc else None}) ---")
                print(server.log())


def test_rolling_restart_behind_haproxy_fails_no_request(cluster, tmp_path):
    lb: HAProxy = cluster["lb"]
    report = tmp_path / "rolling.json"
    load = subprocess.Popen([str(loadtest_binary()), "--port", str(cluster["lb_port"]), "--model", "churn", "--rate", "300",
                             "--duration", str(LOAD_SECONDS), "--connections", "2", "--streams", "16", "--users", "1000",
                             "--json", str(report), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timeline: list[str] = []
    t0 = time.monotonic()

    def note(what: str) -> None:
        timeline.append(f"{time.monotonic() - t0:6.2f}s {what}")

    try:
        time.sleep(1.5)
        for i in range(REPLICAS):
            name = f"apus{i + 1}"
            old = cluster["replicas"][i]
            note(f"SIGTERM {name}")
            old.terminate()
            code = old.wait_exit(20)
            note(f"{name} exited {code}")
            assert code == 0, f"{name} exited {code} after SIGTERM\n" + "\n".join(timeline)
            lb.wait_status(name, "DOWN/", 5)
            cluster["replicas"][i] = cluster["start_replica"](i)
            note(f"{name} restarted")
            took = lb.wait_status(name, "UP/L7OK", 15)
            note(f"haproxy sees {name} UP after {took:.2f}s")
            time.sleep(1.0)   # let the restarted replica take its share before the next one goes
        restarts_done = time.monotonic() - t0
        out, err = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait(10)
    note("load finished")
    assert load.returncode == 0, out.decode() + err.decode()
    phase = json.loads(report.read_text())["phases"][0]["report"]
    # The restarts all happened while the load ran (LOAD_SECONDS from about t=0).
    assert restarts_done < LOAD_SECONDS, "\n".join(timeline)
    assert phase["requests"] >= 3000, phase
    assert phase["failed"] == 0 and set(phase["statuses"]) == {"200"}, (phase["statuses"], phase["errors"], timeline)
    assert set(phase["variants"]) == {"stable", "canary"}, phase["variants"]
    # What HAProxy retried: the log's retries field is "+N" when the request was redispatched.
    redispatched = sum(1 for line in lb.log().splitlines() if re.search(r" \d+/\d+/\d+/\d+/\+\d+ ", line))
    print("\n".join(timeline), f"\nredispatched by haproxy: {redispatched}; latency: {phase['latency']}")


def infer(client: httpx.Client, url: str, key: str) -> httpx.Response:
    rows = np.full((1, 20), 0.5, np.float32)
    body = {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]}
    return client.post(f"{url}/v2/models/churn/infer", json=body, headers={"apus-routing-key": key}, timeout=10)


def churn_requests(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('apus_requests_total{model="churn"'))


def test_same_routing_key_same_variant_on_every_replica_and_through_haproxy(cluster):
    import mmh3
    lb_url = f"http://127.0.0.1:{cluster['lb_port']}"
    before = [churn_requests(port) for port in cluster["ports"]]
    # Direct: HTTP/1.1 to each replica. Through HAProxy: HTTP/2 prior knowledge (the frontend is h2 only).
    with httpx.Client() as direct, httpx.Client(http1=False, http2=True) as through:
        for key in [f"user-{i}" for i in range(40)]:
            bucket = mmh3.hash(f"churn-2026:{key}", 0, signed=False) % 10000
            expected = ("stable", "1") if bucket < 9000 else ("canary", "2")
            seen = {}
            for port in cluster["ports"]:
                r = infer(direct, f"http://127.0.0.1:{port}", key)
                assert r.status_code == 200, r.text
                seen[f"replica :{port}"] = (r.headers["apus-variant"], r.headers["apus-model-version"])
            for attempt in range(REPLICAS):   # round robin: each attempt lands on the next replica
                r = infer(through, lb_url, key)
                assert r.status_code == 200 and r.http_version == "HTTP/2", (r.status_code, r.http_version, r.text)
                assert r.headers["apus-variant-assignment"] == "hash"
                seen[f"haproxy #{attempt}"] = (r.headers["apus-variant"], r.headers["apus-model-version"])
            assert set(seen.values()) == {expected}, (key, bucket, seen)
    # HAProxy spread the requests over all three replicas (roundrobin): 40 keys x 3 each.
    after = [churn_requests(port) for port in cluster["ports"]]
    through_lb = [a - b - 40 for a, b in zip(after, before)]
    assert sum(through_lb) == 120 and all(n >= 30 for n in through_lb), through_lb
    # The replicas' access logs name the client behind HAProxy (its "option forwardfor"): the
    # 120 requests through it carry forwarded_for, the 120 direct ones do not.
    def churn_infers(lines: list[dict]) -> list[dict]:
        return [line for line in lines if line["path"] == "/v2/models/churn/infer"]
    infers = churn_infers(json_lines(cluster["access_logs"], until=lambda lines: len(churn_infers(lines)) >= 240))
    assert sum(1 for line in infers if line.get("forwarded_for") == "127.0.0.1") == 120, infers[-3:]
    assert sum(1 for line in infers if "forwarded_for" not in line) == 120, infers[-3:]
