"""Fixtures that run the real `apus serve` binary on 127.0.0.1.

`APUS_BIN` names the binary (default: .build/debug/apus, relative to the working directory or to
the package root). Every server started here is killed at teardown, and its log is printed when
the test failed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from apus_h1 import ConnectionClosed as H1Closed, H1Conn  # noqa: E402
from apus_h2 import ConnectionClosed as H2Closed, H2Client  # noqa: E402

PACKAGE_ROOT = HERE.parent.parent
PORT_LINE = re.compile(r"port=(\d+)")


ZOO = PACKAGE_ROOT / "Tests/ApusRuntimeTests/Fixtures/zoo"


def bundle(repo: Path, model: str, version: int, zoo_name: str) -> Path:
    """`apus bundle create` of a conformance-zoo model (with its rows as the reference sample)
    into repo/model/version; returns the version folder."""
    out = repo / model / str(version)
    subprocess.run([str(apus_binary()), "bundle", "create", "--onnx", str(ZOO / zoo_name / "model.onnx"),
                    "--reference", str(ZOO / zoo_name / "inputs.npy"), "--out", str(out), "--name", model,
                    "--version", str(version)], check=True, capture_output=True, timeout=60)
    return out


def apus_binary() -> Path:
    name = os.environ.get("APUS_BIN", ".build/debug/apus")
    path = Path(name)
    if not path.is_absolute() and not path.exists() and (PACKAGE_ROOT / name).exists():
        path = PACKAGE_ROOT / name
    return path.resolve() if path.exists() else path


class ApusServer:
    """One `apus serve` process. Its stderr is drained by a thread for the whole process life."""

    def __init__(self, binary: Path, repository: Path, extra: list[str], port: int = 0):
        self.binary = binary
        self.args = [
            "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "2",
            "--model-repository", str(repository), "--poll-interval", "0", *extra,
        ]
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._port_seen = threading.Event()

    def start(self, timeout: float = 30.0) -> "ApusServer":
        # The binary may be relinked by a concurrent build: wait for it (bounded), retry exec.
        deadline = time.monotonic() + 90.0
        while True:
            try:
                self.proc = subprocess.Popen(
                    [str(self.binary), *self.args],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                break
            except OSError as error:  # ENOENT / ETXTBSY while the binary is being written
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot run {self.binary}: {error}") from error
                time.sleep(0.5)
        self._reader = threading.Thread(target=self._drain_stderr, name="apus-stderr", daemon=True)
        self._reader.start()
        start_deadline = time.monotonic() + timeout
        while not self._port_seen.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise RuntimeError(f"apus exited with {self.proc.returncode} before listening:\n{self.log()}")
            if time.monotonic() > start_deadline:
                self.kill()
                raise RuntimeError(f"apus did not log its port within {timeout}s:\n{self.log()}")
        return self

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            if self.port is None and "listening" in line:
                match = PORT_LINE.search(line)
                if match:
                    self.port = int(match.group(1))
                    self._port_seen.set()
        self.proc.stderr.close()

    def log(self) -> str:
        with self.lock:
            return "\n".join(self.lines)

    def wait_for_log(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.02)
        return text in self.log()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, number: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(number)

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        if self._reader is not None:
            self._reader.join(5)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def start_server(request, tmp_path_factory):
    """Factory: `start_server("--idle-timeout", "1", port=0)` -> a running ApusServer.
    Every server it started is killed at teardown (SIGKILL if still alive)."""
    servers: list[ApusServer] = []
    repository = tmp_path_factory.mktemp("models")
    binary = apus_binary()

    def start(*extra: str, repo: Path | None = None, port: int = 0, timeout: float = 30.0) -> ApusServer:
        server = ApusServer(binary, repo or repository, list(extra), port=port)
        servers.append(server)
        return server.start(timeout)

    yield start
    failed = any(getattr(request.node, f"rep_{when}", None) is not None and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    for server in servers:
        server.kill()
        if failed:
            print(f"\n--- apus log (args: {' '.join(server.args)}; exit {server.proc.returncode if server.proc else None}) ---")
            print(server.log())


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One default server for tests that only send well-formed traffic."""
    server = ApusServer(apus_binary(), tmp_path_factory.mktemp("shared-models"), [])
    server.start()
    yield server
    server.kill()


def server_rss(server: ApusServer) -> int:
    """Resident memory of the server process, in bytes."""
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def scrape_metrics(server: ApusServer) -> dict[str, float]:
    """/metrics as {series: value}; the series key is the exposition text before the value."""
    conn = H1Conn(server.port)
    try:
        text = conn.get("/metrics").body.decode()
    finally:
        conn.close()
    series: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            series[key] = float(value)
    return series


class Bystanders:
    """Two well-behaved connections (HTTP/1.1 keep-alive and HTTP/2) opened before an abuse;
    each must still be served, on the same connection, after it. Also the server's memory and
    metrics before the abuse: `check` bounds RSS growth, `counter_moved` reads a counter's change."""

    PATH = "/v2/health/live"
    RSS_BOUND = 30 << 20

    def __init__(self, server: ApusServer):
        self.server = server
        self.h1 = H1Conn(server.port)
        self.h2 = H2Client(server.port)
        self.check("before the abuse")
        self.rss_before = server_rss(server)
        self.metrics_before = scrape_metrics(server)

    def counter_moved(self, series: str) -> float:
        """How much `series` (e.g. "apus_limit_rejections_total") grew since the bystanders opened."""
        return scrape_metrics(self.server).get(series, 0.0) - self.metrics_before.get(series, 0.0)

    def check(self, when: str = "after the abuse") -> None:
        try:
            response = self.h1.get(self.PATH)
            status, _, body = self.h2.get(self.PATH)
        except (H1Closed, H2Closed, OSError, TimeoutError) as error:
            code = self.server.wait_exit(3)
            state = f"the server process DIED (exit code {code})" if code is not None else "the server process is still running"
            raise AssertionError(f"bystander connection not served {when}: {error!r}; {state}") from error
        assert response.status == 200, f"HTTP/1.1 bystander {when}: {response}"
        assert response.header("connection") == "keep-alive", f"HTTP/1.1 bystander {when}: {response.headers}"
        assert status == 200, f"HTTP/2 bystander {when}: status {status}, body {body!r}"
        if hasattr(self, "rss_before"):
            grown = server_rss(self.server) - self.rss_before
            assert grown < self.RSS_BOUND, f"server RSS grew {grown >> 20} MiB {when}"

    def close(self) -> None:
        self.h1.close()
        self.h2.close()


@pytest.fixture
def bystanders_for():
    opened: list[Bystanders] = []

    def make(server: ApusServer) -> Bystanders:
        b = Bystanders(server)
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.close()
