"""Reliability suite (issue 9): hostile HTTP/2 clients, malformed payloads, model and process
faults, against the real `apus serve` binary on 127.0.0.1.

Run: APUS_BIN=$PWD/.build/debug/apus python3 -m pytest -q Tests/integration/test_reliability.py

Every case checks four things and reports all that failed at once (not only the first):
  (a) the wire result: status, GOAWAY error code, RST code, or the close;
  (b) a /metrics counter (or gauge) that moved;
  (c) flat memory: the server's VmRSS after the abuse is within RSS_BOUND of a baseline taken
      after one warm-up round of the same abuse;
  (d) well-behaved connections (HTTP/1.1 keep-alive and HTTP/2, opened before) still served.

What test_transport.py and test_inference.py already cover is not repeated here (header bytes
and count 431, body 413, too many streams, idle timeout, slowloris, 50-frame junk floods with a
reading client, malformed frames, SIGTERM drain, restart after kill -9, 4xx basics, gzip bomb,
100 hot swaps, queue full 429). Every loop is bounded in count and time; traffic goes only to
127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from apus_h2 import (
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    HEADERS,
    PREFACE,
    PROTOCOL_ERROR,
    RST_STREAM,
    SETTINGS_INITIAL_WINDOW_SIZE,
    DataFrame,
    RawH2,
    data_frame,
    ping_frame,
    priority_frame,
    raw_frame,
    request_headers,
    settings_frame,
)
from apus_net import free_port
from conftest import PACKAGE_ROOT, ApusServer, apus_binary
from conftest import scrape_metrics as scrape, server_rss as rss

ZOO = PACKAGE_ROOT / "Tests/ApusRuntimeTests/Fixtures/zoo"
LIVE = "/v2/health/live"
MiB = 1 << 20
# Growth of VmRSS allowed between the post-warm-up baseline and the end of an abuse. The debug
# build idles at ~40 MiB and malloc's noise across these cases stays under ~5 MiB. What this
# catches: buffering that grows with the abuse (a kept copy of each 16 KB frame, of each decoded
# header, of each malformed body: 10s to 1000s of MiB here) and leaks of ~20 KiB or more per abusive
# connection or request; leaks of a few bytes per request are the soak's job (scripts/soak.sh).
RSS_BOUND = 30 * MiB
CANCEL = 0x8


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


class Checks:
    """Soft assertions: every failed expectation of a case is reported together."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, condition: bool, message: str) -> bool:
        if not condition:
            self.failures.append(message)
        return condition

    def done(self) -> None:
        assert not self.failures, "\n- " + "\n- ".join(self.failures)


def open_fds(server: ApusServer) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def delta(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def check_memory(checks: Checks, server: ApusServer, baseline: int, what: str) -> None:
    now = rss(server)
    checks(now - baseline < RSS_BOUND,
           f"memory: VmRSS grew {(now - baseline) / MiB:.1f} MiB over {what} (baseline {baseline / MiB:.1f} MiB, "
           f"now {now / MiB:.1f} MiB; bound {RSS_BOUND / MiB:.0f} MiB)")


def check_fds(checks: Checks, server: ApusServer, baseline: int, what: str, slack: int = 2) -> None:
    """Every connection of the abuse is gone: the server's open fds come back to the baseline
    (polled, bounded: the server closes its side asynchronously)."""
    deadline = time.monotonic() + 3
    now = open_fds(server)
    while now > baseline + slack and time.monotonic() < deadline:
        time.sleep(0.05)
        now = open_fds(server)
    checks(now <= baseline + slack, f"fds: {now} open after {what}, {baseline} before (slack {slack})")


def check_bystanders(checks: Checks, bystanders, when: str) -> None:
    try:
        bystanders.check(when)
    except AssertionError as error:
        checks(False, str(error))


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    """Popen of one of the package's binaries, retried (bounded) while a concurrent build
    relinks it (ENOENT, ETXTBSY, ENOEXEC), like conftest.ApusServer.start."""
    deadline = time.monotonic() + 90
    while True:
        try:
            return subprocess.Popen(args, **kwargs)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def bundle(repo: Path, model: str, version: int, zoo_name: str) -> Path:
    out = repo / model / str(version)
    args = [str(apus_binary()), "bundle", "create", "--onnx", str(ZOO / zoo_name / "model.onnx"),
            "--reference", str(ZOO / zoo_name / "inputs.npy"), "--out", str(out), "--name", model, "--version", str(version)]
    for attempt in range(3):  # a binary caught half-written by a concurrent link fails once; retry
        proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(timeout=60)
        if proc.returncode == 0:
            return out
        shutil.rmtree(out, ignore_errors=True)
        time.sleep(1)
    raise AssertionError(f"apus bundle create failed ({proc.returncode}): {stderr.decode()[-1000:]}")


def copy_version(repo: Path, model: str, source: int, target: int) -> Path:
    """A complete copy of a bundle under a new version number (manifest renumbered)."""
    out = repo / model / str(target)
    shutil.copytree(repo / model / str(source), out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = target
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def json_rows(rows: np.ndarray) -> dict:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": [None if np.isnan(v) else float(v) for v in rows.reshape(-1)]}]}


ROW = json_rows(np.full((1, 20), 0.5, np.float32))


def index(server: ApusServer) -> dict[str, dict]:
    """POST /v2/repository/index as {version: entry} for the versions listed."""
    entries = httpx.post(server.url + "/v2/repository/index", timeout=10).json()
    return {e.get("version", ""): e for e in entries}


def admin_load(server: ApusServer, model: str) -> httpx.Response:
    """Triggers a rescan of the model (the admin API, not a sleep)."""
    return httpx.post(f"{server.url}/v2/repository/models/{model}/load", timeout=30)


class RequestLoop:
    """Well-behaved traffic during a fault: JSON inferences over one HTTP/1.1 keep-alive
    connection, in a thread, bounded in count and time. Records (status, served version)."""

    def __init__(self, server: ApusServer, path: str, limit_s: float = 60.0, max_requests: int = 20000):
        self.url = server.url + path
        self.limit_s = limit_s
        self.max_requests = max_requests
        self.results: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-loop", daemon=True)

    def __enter__(self) -> "RequestLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
                try:
                    r = client.post(self.url, json=ROW)
                    self.results.append((r.status_code, r.headers.get("apus-model-version")))
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                time.sleep(0.003)  # ~200 requests/s at most: leaves the 2 cores to the server

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.results)
        while len(self.results) < start + count and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def summary(self) -> str:
        statuses: dict[int, int] = {}
        for status, _ in self.results:
            statuses[status] = statuses.get(status, 0) + 1
        return f"{len(self.results)} requests, statuses {statuses}, transport errors {self.errors[:3]}"

    def failed(self) -> list:
        return [r for r in self.results if r[0] != 200] + self.errors


@pytest.fixture
def serve(start_server):
    """Factory: `serve(*flags, repo=None, port=0)` -> a running ApusServer (conftest's
    `start_server`: killed at teardown, logs printed when the test failed)."""
    return start_server


@pytest.fixture(scope="module")
def lr_repo(tmp_path_factory) -> Path:
    """A repository with one small model (logistic regression, 20 FP32 features)."""
    repo = tmp_path_factory.mktemp("lr-repo")
    bundle(repo, "lr", 1, "logreg_binary")
    return repo


# ---------------------------------------------------------------------------------------------
# 1. HTTP/2 abuse
# ---------------------------------------------------------------------------------------------


def goaway_summary(conn: RawH2) -> list[tuple[int, int]]:
    return [(g.error_code, g.last_stream_id) for g in conn.goaways]


def rapid_reset_storm(port: int, pairs: int) -> tuple[RawH2, bool]:
    """HEADERS (a complete GET) immediately followed by RST_STREAM CANCEL, `pairs` times."""
    conn = RawH2(port)
    conn.handshake()
    batch = bytearray()
    for i in range(pairs):
        sid = 1 + 2 * i
        batch += conn.request_frame(sid, "GET", LIVE) + raw_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
        if len(batch) >= 16384:
            if not conn.try_send(bytes(batch)):
                break
            batch.clear()
    if batch:
        conn.try_send(bytes(batch))
    closed = conn.wait_closed(5)
    conn.close()
    return conn, closed


def test_rapid_reset_storm_gets_goaway_enhance_your_calm_and_memory_stays_flat(serve, bystanders_for):
    server = serve()
    bystanders = bystanders_for(server)
    checks = Checks()
    rapid_reset_storm(server.port, 3000)  # warm-up round
    baseline, fds, before = rss(server), open_fds(server), scrape(server)
    storms = 5
    for round_ in range(storms):
        conn, closed = rapid_reset_storm(server.port, 3000)
        goaways = goaway_summary(conn)
        checks(closed, f"storm {round_}: the connection was not closed within 5 s; {conn.describe()[-300:]}")
        checks(bool(goaways), f"storm {round_}: closed without any GOAWAY")
        # The flood is answered as a flood: ENHANCE_YOUR_CALM, not INTERNAL_ERROR (nghttp2's
        # rapid-reset limiter's own code), and RFC 9113 6.8: later GOAWAYs MUST NOT increase
        # the last stream id.
        checks(all(code == ENHANCE_YOUR_CALM for code, _ in goaways),
               f"storm {round_}: GOAWAY (code, last_stream_id) {goaways}; expected ENHANCE_YOUR_CALM (0xb) only")
        last_ids = [last for _, last in goaways]
        checks(last_ids == sorted(last_ids, reverse=True),
               f"storm {round_}: GOAWAY last_stream_id increased between GOAWAYs {goaways} (RFC 9113 6.8: MUST NOT)")
        if round_ == 2:
            check_bystanders(checks, bystanders, "during the reset storms")
    after = scrape(server)
    checks(delta(before, after, "apus_goaway_enhance_your_calm_total") >= storms,
           f"metrics: apus_goaway_enhance_your_calm_total moved by {delta(before, after, 'apus_goaway_enhance_your_calm_total')}, expected >= {storms}")
    checks(delta(before, after, "apus_junk_frames_total") >= storms * 1000,
           f"metrics: apus_junk_frames_total moved by {delta(before, after, 'apus_junk_frames_total')}")
    check_memory(checks, server, baseline, f"{storms} storms of 3000 HEADERS+RST_STREAM")
    check_fds(checks, server, fds, "the storms")
    check_bystanders(checks, bystanders, "after the reset storms")
    checks.done()


def continuation_flood(conn: RawH2, payload: bytes, frames: int, trickle: bool) -> None:
    """HEADERS without END_HEADERS on stream 1, then up to `frames` CONTINUATIONs that never end
    the block; `trickle` sends 4 per write with pauses (separate reads on the server)."""
    block = conn.encode(request_headers("GET", LIVE))
    conn.send(raw_frame(HEADERS, END_STREAM, 1, block))
    per_write = 4 if trickle else 200
    sent = 0
    deadline = time.monotonic() + 8
    while sent < frames and time.monotonic() < deadline:
        if not conn.try_send(raw_frame(CONTINUATION, 0, 1, payload) * per_write):
            return
        sent += per_write
        if trickle:
            try:
                if conn.read_until(lambda _f: False, 0.02) is None:
                    return
            except TimeoutError:
                pass


# A literal header field without indexing, "x: y" (6 bytes), and one of ~16 KB.
SMALL_FIELD = b"\x00\x01x\x01y"
BIG_FIELD = b"\x00\x01x\x7f" + bytes([(16000 - 127) & 0x7F | 0x80, (16000 - 127) >> 7]) + b"v" * 16000


@pytest.mark.parametrize("payload, trickle", [(SMALL_FIELD, False), (BIG_FIELD, False), (SMALL_FIELD, True)],
                         ids=["small_frames_burst", "16k_frames_burst", "small_frames_trickled"])
def test_continuation_flood_is_closed_with_a_goaway_and_memory_stays_flat(serve, bystanders_for, payload, trickle):
    server = serve()
    bystanders = bystanders_for(server)
    checks = Checks()
    conn = RawH2(server.port)
    conn.handshake()
    continuation_flood(conn, payload, 2000, trickle)  # warm-up round
    conn.wait_closed(5)
    conn.close()
    baseline, fds, before = rss(server), open_fds(server), scrape(server)
    rounds = 5
    for round_ in range(rounds):
        conn = RawH2(server.port)
        conn.handshake()
        started = time.monotonic()
        continuation_flood(conn, payload, 5000, trickle)
        closed = conn.wait_closed(5)
        elapsed = time.monotonic() - started
        conn.close()
        checks(closed, f"round {round_}: not closed within 5 s of the flood; {conn.describe()[-300:]}")
        checks(elapsed < 10, f"round {round_}: took {elapsed:.1f}s to close")
        goaways = goaway_summary(conn)
        # RFC 9113 5.4.1: a connection error SHOULD be announced with a GOAWAY before the close.
        checks(bool(goaways) and all(code in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM) for code, _ in goaways),
               f"round {round_}: GOAWAYs {goaways} before the close (expected one with PROTOCOL_ERROR or "
               f"ENHANCE_YOUR_CALM); frames: {conn.describe()[-200:]}")
        response = conn.peek_response(1)
        checks(response is None or response.status is None, f"round {round_}: the flooded stream was answered: {response}")
    after = scrape(server)
    moved = delta(before, after, "apus_protocol_errors_total") + delta(before, after, "apus_goaway_enhance_your_calm_total")
    checks(moved >= rounds, f"metrics: apus_protocol_errors_total + apus_goaway_enhance_your_calm_total moved by {moved}, expected >= {rounds}")
    check_memory(checks, server, baseline, f"{rounds} CONTINUATION floods")
    check_fds(checks, server, fds, "the CONTINUATION floods")
    check_bystanders(checks, bystanders, "after the CONTINUATION floods")
    checks.done()


def hpack_bomb(conn: RawH2, stream_id: int, value: str, continuations: int = 16) -> int:
    """A header block that inserts one dynamic-table entry `x-bomb: value` and then references
    it with one-byte indexed fields for the rest of a HEADERS frame and `continuations` full
    CONTINUATIONs. Returns the number of references (the decoded list grows by len(value) each).
    The client's encoder inserted the same entry, so HPACK stays in sync for later requests."""
    block = conn.encode(request_headers("GET", LIVE) + [("x-bomb", value)])
    table = list(conn.encoder.header_table.dynamic_entries)
    assert table and table[0] == (b"x-bomb", value.encode()), table[:2]  # index 62 is the entry
    ref = bytes([0x80 | 62])
    first = block + ref * (16384 - len(block))
    frames = raw_frame(HEADERS, END_STREAM | (0 if continuations else END_HEADERS), stream_id, first)
    for i in range(continuations):
        frames += raw_frame(CONTINUATION, END_HEADERS if i == continuations - 1 else 0, stream_id, ref * 16384)
    conn.send(frames)
    return (16384 - len(block)) + continuations * 16384


def test_hpack_bomb_referencing_a_big_dynamic_table_entry_gets_431_and_memory_stays_flat(serve, bystanders_for):
    server = serve()
    bystanders = bystanders_for(server)
    checks = Checks()
    conn = RawH2(server.port)
    conn.handshake()
    hpack_bomb(conn, 1, "a" * 4000)  # warm-up
    conn.response(1, timeout=15)
    baseline, before = rss(server), scrape(server)
    bombs = [("big entry", "a" * 4000), ("tiny entry", ""), ("big entry", "b" * 4000), ("tiny entry", ""), ("big entry", "c" * 4000)]
    expanded = 0
    for i, (kind, value) in enumerate(bombs):
        sid = 3 + 2 * i
        refs = hpack_bomb(conn, sid, value)
        expanded += refs * (len("x-bomb") + len(value))
        try:
            response = conn.response(sid, timeout=15)
        except Exception as error:  # noqa: BLE001 - reported below with the frames seen
            checks(False, f"bomb {i} ({kind}): no answer: {error!r}; {conn.describe()[-300:]}")
            break
        if response.status is not None:
            checks(response.status == 431, f"bomb {i} ({kind}): status {response.status}, body {response.body[:200]!r}")
        else:  # a GOAWAY is also an acceptable answer, but then the connection must go
            checks(bool(conn.goaways), f"bomb {i} ({kind}): neither 431 nor GOAWAY: {conn.describe()[-300:]}")
    if not conn.goaways and not conn.eof:
        # The block was decoded in full: HPACK is still in sync and the connection keeps serving.
        sid = 3 + 2 * len(bombs)
        conn.send(conn.request_frame(sid, "GET", LIVE))
        response = conn.response(sid)
        checks(response.status == 200, f"a normal request after the bombs on the same connection: {response}; {conn.describe()[-200:]}")
    conn.close()
    after = scrape(server)
    checks(delta(before, after, "apus_limit_rejections_total") >= len(bombs),
           f"metrics: apus_limit_rejections_total moved by {delta(before, after, 'apus_limit_rejections_total')}, expected >= {len(bombs)}")
    check_memory(checks, server, baseline, f"{len(bombs)} HPACK bombs expanding to {expanded / MiB:.0f} MiB of header list in total")
    check_bystanders(checks, bystanders, "after the HPACK bombs")
    checks.done()


def flood_without_reading(port: int, frame: bytes, limit_s: float) -> tuple[bool, float, int]:
    """A client with a small receive buffer that writes `frame` over and over and never reads.
    Returns (closed by the server, seconds until the close was seen, bytes written)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(PREFACE + settings_frame() + settings_frame(ack=True))
    sock.setblocking(False)
    chunk = frame * 100
    written = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit_s:
            _, writable, _ = select.select([], [sock], [], 0.1)
            if not writable:
                continue  # the server stopped reading; keep trying until it closes or time is up
            try:
                written += sock.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return True, time.monotonic() - started, written
            except BlockingIOError:
                continue
        return False, time.monotonic() - started, written
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["settings", "ping"])
@pytest.mark.parametrize("junk_limit", ["default", "unlimited"])
def test_settings_and_ping_floods_from_a_client_that_never_reads_are_cut_off_with_flat_memory(serve, bystanders_for, kind, junk_limit):
    # "default": the junk budget (1000) trips first. "unlimited": only the output side can stop
    # it (nghttp2's bound on queued ACKs, the outbound queue, the write-stall timer).
    flags = ["--write-stall-timeout", "2"]
    if junk_limit == "unlimited":
        flags += ["--max-junk-frames", "1000000000"]
    server = serve(*flags)
    bystanders = bystanders_for(server)
    checks = Checks()
    frame = ping_frame() if kind == "ping" else settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 65535})
    flood_without_reading(server.port, frame, 15)  # warm-up
    baseline, fds, before = rss(server), open_fds(server), scrape(server)
    rounds = 3
    for round_ in range(rounds):
        closed, elapsed, written = flood_without_reading(server.port, frame, 15)
        checks(closed, f"round {round_}: the server neither closed nor stopped the flood within {elapsed:.1f}s ({written} bytes written)")
        if round_ == 1:
            check_bystanders(checks, bystanders, f"during the {kind} floods")
    after = scrape(server)
    checks(delta(before, after, "apus_junk_frames_total") >= rounds * 1000,
           f"metrics: apus_junk_frames_total moved by {delta(before, after, 'apus_junk_frames_total')}")
    cut = delta(before, after, "apus_goaway_enhance_your_calm_total") + delta(before, after, "apus_protocol_errors_total")
    checks(cut >= rounds, f"metrics: apus_goaway_enhance_your_calm_total + apus_protocol_errors_total moved by {cut}, expected >= {rounds}")
    check_memory(checks, server, baseline, f"{rounds} {kind} floods")
    check_fds(checks, server, fds, f"the {kind} floods")
    check_bystanders(checks, bystanders, f"after the {kind} floods")
    checks.done()


def junk_frame(kind: str, i: int) -> bytes:
    if kind == "priority_new_streams":  # a PRIORITY on an idle stream makes nghttp2 create it
        return priority_frame(1 + 2 * i)
    if kind == "priority_one_stream":
        return priority_frame(1, depends_on=3 if i % 2 else 0)
    if kind == "unknown_empty":
        return raw_frame(0xFA, 0, 0, b"")
    if kind == "unknown_16k":
        return raw_frame(0x20 + i % 200, 0, 1 + 2 * (i % 50), b"u" * 16000)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["priority_new_streams", "priority_one_stream", "unknown_empty", "unknown_16k"])
def test_priority_and_unknown_frame_floods_get_goaway_enhance_your_calm_with_default_limits(serve, bystanders_for, kind):
    server = serve()  # production limits: --max-junk-frames 1000
    bystanders = bystanders_for(server)
    checks = Checks()

    def flood() -> RawH2:
        conn = RawH2(server.port)
        conn.handshake()
        batch = bytearray()
        for i in range(5000):
            batch += junk_frame(kind, i)
            if len(batch) >= 32768:
                if not conn.try_send(bytes(batch)):
                    break
                batch.clear()
        if batch:
            conn.try_send(bytes(batch))
        conn.wait_closed(5)
        conn.close()
        return conn

    flood()  # warm-up
    baseline, fds, before = rss(server), open_fds(server), scrape(server)
    rounds = 3
    for round_ in range(rounds):
        conn = flood()
        checks(conn.eof, f"round {round_}: not closed within 5 s; {conn.describe()[-200:]}")
        codes = [code for code, _ in goaway_summary(conn)]
        checks(codes == [ENHANCE_YOUR_CALM], f"round {round_}: GOAWAY codes {codes}, expected [ENHANCE_YOUR_CALM]; {conn.describe()[-200:]}")
    after = scrape(server)
    checks(delta(before, after, "apus_goaway_enhance_your_calm_total") >= rounds,
           f"metrics: apus_goaway_enhance_your_calm_total moved by {delta(before, after, 'apus_goaway_enhance_your_calm_total')}")
    checks(delta(before, after, "apus_junk_frames_total") >= rounds * 1000,
           f"metrics: apus_junk_frames_total moved by {delta(before, after, 'apus_junk_frames_total')}")
    check_memory(checks, server, baseline, f"{rounds} floods of 5000 {kind} frames")
    check_fds(checks, server, fds, f"the {kind} floods")
    check_bystanders(checks, bystanders, f"after the {kind} floods")
    checks.done()


def zero_window_reader(server: ApusServer, infer_body: bytes, streams: int) -> RawH2:
    """INITIAL_WINDOW_SIZE 0, then `streams` requests (half GET /metrics, half protobuf
    inferences with a sizeable answer); never a WINDOW_UPDATE."""
    conn = RawH2(server.port, timeout=10)
    conn.handshake({SETTINGS_INITIAL_WINDOW_SIZE: 0})
    for i in range(streams):
        sid = 1 + 2 * i
        if i % 2 == 0:
            conn.send(conn.request_frame(sid, "GET", "/metrics"))
            continue
        conn.send(conn.request_frame(sid, "POST", "/v2/models/lr/infer", extra=[("content-type", "application/x-protobuf")], end_stream=False))
        for offset in range(0, len(infer_body), 16384):
            conn.send(data_frame(sid, infer_body[offset:offset + 16384], end_stream=offset + 16384 >= len(infer_body)))
    return conn


def test_zero_window_reader_is_held_without_memory_growth_and_closed_by_the_write_stall_timer(serve, bystanders_for, lr_repo, pb):
    stall = 2.0
    server = serve("--write-stall-timeout", str(stall), "--idle-timeout", "60", repo=lr_repo)
    bystanders = bystanders_for(server)
    checks = Checks()
    rows = np.random.RandomState(0).rand(500, 20).astype(np.float32)
    request = pb.InferRequest()
    request.inputs.add(name="input", datatype=pb.FP32, shape=list(rows.shape), raw_contents=rows.tobytes())
    body = request.SerializeToString()  # 40 KB in, ~8 KB out per inference
    streams = 60

    warm = zero_window_reader(server, body, streams)
    warm.read_until(lambda _f: sum(1 for r in warm._responses.values() if r.status) >= streams, 20)
    warm.close()
    time.sleep(0.5)
    baseline, fds, before = rss(server), open_fds(server), scrape(server)

    conns, started = [], []
    for _ in range(3):
        started.append(time.monotonic())  # no timer can start before the connection's first request
        conns.append(zero_window_reader(server, body, streams))
    opened = time.monotonic()
    for n, conn in enumerate(conns):
        try:
            conn.read_until(lambda _f: sum(1 for r in conn._responses.values() if r.status) >= streams, 20)
        except TimeoutError:
            pass
        # 429 is a legitimate answer too (the batch queue is bounded; a busy machine fills it).
        answered = sum(1 for r in conn._responses.values() if r.status in (200, 429))
        others = {sid: (r.status, r.reset_code) for sid, r in conn._responses.items() if r.status not in (200, 429)}
        checks(answered == streams, f"connection {n}: {answered}/{streams} streams got their answer's HEADERS; others (status, reset): {others}")
        data = [f for f in conn.received if isinstance(f, DataFrame) and f.data]
        checks(not data, f"connection {n}: {len(data)} DATA frames with payload sent into a zero window")
    held = scrape(server)
    checks(delta(before, held, "apus_connections_open") >= len(conns),
           f"metrics: apus_connections_open moved by {delta(before, held, 'apus_connections_open')} with {len(conns)} zero-window readers held")
    check_bystanders(checks, bystanders, "while the zero-window readers are held")
    check_memory(checks, server, baseline, f"holding {len(conns)} zero-window readers of {streams} answers each")

    # A peer that never opens its window is a peer that does not read: the write-stall timer
    # (TransportLimits.writeStallTimeoutNanos: "unwritable (peer not reading, zero window)")
    # must close it.
    limit = stall + 5
    closed_after: dict[int, float] = {}
    while len(closed_after) < len(conns) and time.monotonic() - opened < limit:
        for n, conn in enumerate(conns):
            if n not in closed_after and conn.wait_closed(0.05):
                closed_after[n] = time.monotonic() - started[n]
    checks(len(closed_after) == len(conns),
           f"zero-window readers still open {time.monotonic() - opened:.1f}s after their requests with --write-stall-timeout {stall}: "
           f"{sorted(set(range(len(conns))) - set(closed_after))} of {len(conns)} (closed: {closed_after})")
    for n, elapsed in closed_after.items():
        checks(elapsed >= stall * 0.8, f"connection {n} closed after {elapsed:.2f}s, before the {stall}s write-stall timeout")
    for conn in conns:
        conn.close()
    time.sleep(0.3)
    after = scrape(server)
    checks(after.get("apus_connections_open", 0) <= before.get("apus_connections_open", 0),
           f"metrics: apus_connections_open {after.get('apus_connections_open')} after the readers went, {before.get('apus_connections_open')} before")
    check_memory(checks, server, baseline, "the zero-window readers' lifetime")
    check_fds(checks, server, fds, "the zero-window readers")
    check_bystanders(checks, bystanders, "after the zero-window readers")
    checks.done()


# ---------------------------------------------------------------------------------------------
# 2. Protocol abuse: malformed protobuf and JSON, wrong dtypes and shapes, NaN/Inf
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def payload_server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("payload-repo")
    bundle(repo, "lr", 1, "logreg_binary")
    bundle(repo, "xgb", 1, "xgb_binary")
    server = ApusServer(apus_binary(), repo, []).start()
    yield server
    server.kill()


LR_4XX = 'apus_requests_total{model="lr",code="4xx"} (all versions)'


def lr_4xx(series: dict[str, float]) -> float:
    """4xx answers of model lr, whatever the version label: a body rejected before a version is
    chosen counts under version "", one whose inputs the chosen version rejects under that version."""
    return sum(v for k, v in series.items() if k.startswith('apus_requests_total{model="lr",') and k.endswith('code="4xx"}'))


def malformed_protobuf_bodies(pb) -> list[tuple[str, bytes]]:
    rows = np.full((2, 20), 0.5, np.float32)
    request = pb.InferRequest(id="r")
    request.inputs.add(name="input", datatype=pb.FP32, shape=[2, 20], raw_contents=rows.tobytes())
    good = request.SerializeToString()
    rng = random.Random(9)
    bodies = [(f"random {n} bytes", bytes(rng.getrandbits(8) for _ in range(n))) for n in (1, 7, 64, 200, 1000, 4096) for _ in range(3)]
    bodies += [(f"truncated at {cut}/{len(good)}", good[:cut]) for cut in range(1, len(good), 7)]
    bodies += [
        ("length prefix beyond the body", b"\x32\xff\xff\xff\xff\x0f" + b"\x00" * 10),
        ("overlong varint", b"\x08" + b"\xff" * 11),
        ("wire type 7", b"\x0f"),
        ("field number 0", b"\x00\x01"),
        ("100k nested groups", b"\x0b" * 100_000),
        ("100k nested unknown groups", b"\xa3\x01" * 100_000),
        ("invalid UTF-8 in a string field", b"\x2a\x02\xff\xfe"),
    ]
    return bodies


def wrong_tensor_bodies(pb) -> list[tuple[str, bytes, str]]:
    """Well-formed protobuf whose tensor is wrong: (case, body, text the error must contain)."""
    rows = np.full((2, 20), 0.5, np.float32)

    def make(**tensor) -> bytes:
        fields = dict(name="input", datatype=pb.FP32, shape=[2, 20], raw_contents=rows.tobytes())
        fields.update(tensor)
        request = pb.InferRequest()
        request.inputs.add(**fields)
        return request.SerializeToString()

    return [
        ("INT64 dtype with FP32-sized contents", make(datatype=pb.INT64), "input input"),
        ("unspecified dtype", make(datatype=0), "datatype"),
        ("unknown dtype 99", make(datatype=99), "datatype"),
        ("shape of the wrong width", make(shape=[4, 10]), "shape"),
        ("negative dimension", make(shape=[-1, 20]), "shape"),
        ("2^80-element shape", make(shape=[2 ** 40, 2 ** 40]), "shape"),
        ("contents shorter than the shape", make(raw_contents=b"\0" * 10), "input input"),
        ("unknown input name", make(name="nope"), "nope"),
        ("empty input name", make(name=""), "name"),
        ("Inf in FP32 contents", make(raw_contents=np.where(np.arange(40) == 3, np.inf, 0.5).astype(np.float32).tobytes()), "input input"),
    ]


def test_malformed_and_wrong_protobuf_bodies_get_400_naming_the_problem_with_flat_memory(payload_server, pb, bystanders_for):
    server = payload_server
    bystanders = bystanders_for(server)
    checks = Checks()
    url = server.url + "/v2/models/lr/infer"
    headers = {"content-type": "application/x-protobuf"}
    malformed = malformed_protobuf_bodies(pb)
    wrong = wrong_tensor_bodies(pb)
    with httpx.Client(timeout=30) as client:
        for _, body in malformed[:20]:  # warm-up
            client.post(url, content=body, headers=headers)
        baseline, before = rss(server), scrape(server)
        sent = 0
        for _ in range(10):  # ~1500 bad bodies in all
            for case, body in malformed:
                r = client.post(url, content=body, headers=headers)
                sent += 1
                if r.status_code != 400 or r.headers.get("content-type") != "application/x-protobuf":
                    checks(False, f"{case}: {r.status_code} {r.headers.get('content-type')} {r.content[:120]!r}")
                    continue
                error = pb.Error.FromString(r.content)
                checks(error.code == "bad_request" and len(error.message) > 10,
                       f"{case}: error {error.code!r} {error.message!r} does not say what is wrong")
            for case, body, needle in wrong:
                r = client.post(url, content=body, headers=headers)
                sent += 1
                message = pb.Error.FromString(r.content).message if r.status_code == 400 else r.text
                checks(r.status_code == 400 and needle in message, f"{case}: {r.status_code} {message!r} (expected 400 naming {needle!r})")
    after = scrape(server)
    checks(lr_4xx(after) - lr_4xx(before) >= sent, f"metrics: {LR_4XX} moved by {lr_4xx(after) - lr_4xx(before)}, {sent} bad requests sent")
    check_memory(checks, server, baseline, f"{sent} malformed protobuf requests")
    check_bystanders(checks, bystanders, "after the malformed protobuf bodies")
    checks.done()


D19 = ",".join(["0.5"] * 19)
D20 = ",".join(["0.5"] * 20)


def tensor_json(data: str = D20, shape: str = "[1,20]", datatype: str = '"FP32"', name: str = '"input"') -> str:
    return '{"inputs":[{"name":%s,"shape":%s,"datatype":%s,"data":[%s]}]}' % (name, shape, datatype, data)


JSON_CASES = [
    # (case, raw body, text the 400's error must contain)
    ("NaN literal in data", tensor_json("NaN," + D19), "NaN"),
    ("Infinity literal in data", tensor_json("Infinity," + D19), "Infinity"),
    ("-Infinity literal in data", tensor_json("-Infinity," + D19), "Infinity"),
    ("NaN literal in shape", tensor_json(shape="[1,NaN]"), "NaN"),
    ("number beyond double range", tensor_json("1e999," + D19), "range"),
    ("number beyond FP32 range", tensor_json("1e39," + D19), "input input"),
    ('"NaN" as a string', tensor_json('"NaN",' + D19), "data[0]"),
    ("string in FP32 data", tensor_json('"a",' + D19), "data[0]"),
    ("bool in FP32 data", tensor_json("true," + D19), "data[0]"),
    ("object in data", tensor_json('{"v":1},' + D19), "data[0]"),
    ("fraction in INT64 data", tensor_json(datatype='"INT64"'), "data[0]"),
    ("BYTES datatype", tensor_json(datatype='"BYTES"'), "BYTES"),
    ("datatype as a number", tensor_json(datatype="4"), "datatype"),
    ("unknown datatype", tensor_json(datatype='"FP8"'), "FP8"),
    ("3-d shape", tensor_json(shape="[1,1,20]"), "shape"),
    ("negative dimension", tensor_json(shape="[-1,20]"), "shape"),
    ("fractional dimension", tensor_json(shape="[1.5,20]"), "shape"),
    ("huge shape", tensor_json(shape="[100000000000,100000000000]"), "shape"),
    ("shape as a string", tensor_json(shape='"1x20"'), "shape"),
    ("too few values for the shape", tensor_json(D19), "input"),
    ("name as a number", tensor_json(name="7"), "name"),
    ("the same input twice", '{"inputs":[%s,%s]}' % (tensor_json()[11:-2], tensor_json()[11:-2]), "twice"),
    ("inputs not an array", '{"inputs":{"name":"input"}}', "inputs"),
    ("lone surrogate", tensor_json(name='"\\ud800"'), "surrogate"),
    ("truncated body", tensor_json()[:-5], "JSON"),
]


def test_json_nan_infinity_literals_and_wrong_dtypes_and_shapes_get_400_naming_the_field(payload_server, bystanders_for):
    server = payload_server
    bystanders = bystanders_for(server)
    checks = Checks()
    url = server.url + "/v2/models/lr/infer"
    with httpx.Client(timeout=30) as client:
        for _, body, _ in JSON_CASES:  # warm-up
            client.post(url, content=body, headers={"content-type": "application/json"})
        baseline, before = rss(server), scrape(server)
        sent = 0
        for round_ in range(20):
            for case, body, needle in JSON_CASES:
                r = client.post(url, content=body, headers={"content-type": "application/json"})
                sent += 1
                if round_ == 0:
                    try:
                        payload = r.json()
                    except ValueError:
                        payload = {}
                    checks(r.status_code == 400 and payload.get("code") == "bad_request" and needle in payload.get("error", ""),
                           f"{case}: {r.status_code} {r.text[:160]!r} (expected 400 bad_request naming {needle!r})")
                else:
                    checks(r.status_code == 400, f"{case} (round {round_}): {r.status_code}")
    after = scrape(server)
    checks(lr_4xx(after) - lr_4xx(before) >= sent, f"metrics: {LR_4XX} moved by {lr_4xx(after) - lr_4xx(before)}, {sent} bad requests sent")
    check_memory(checks, server, baseline, f"{sent} bad JSON requests")
    check_bystanders(checks, bystanders, "after the bad JSON bodies")
    checks.done()


def test_nan_in_fp32_binary_data_is_a_missing_value_answered_200_like_onnxruntime(payload_server, pb, bystanders_for):
    # Trees route missing values; NaN in raw FP32 data (protobuf raw_contents or the KServe
    # binary-data extension) is legitimate input, unlike a NaN literal in JSON.
    server = payload_server
    bystanders = bystanders_for(server)
    checks = Checks()
    rows = np.load(ZOO / "xgb_binary" / "inputs.npy").astype(np.float32)
    assert np.isnan(rows).any(), "the XGBoost zoo inputs are expected to hold NaN rows"
    expected = np.load(ZOO / "xgb_binary" / "expected_probabilities.npy")
    before = scrape(server)
    with httpx.Client(timeout=30) as client:
        request = pb.InferRequest(id="nan-rows")
        request.inputs.add(name="input", datatype=pb.FP32, shape=list(rows.shape), raw_contents=rows.tobytes())
        r = client.post(server.url + "/v2/models/xgb/infer", content=request.SerializeToString(), headers={"content-type": "application/x-protobuf"})
        if checks(r.status_code == 200, f"protobuf with NaN rows: {r.status_code} {r.content[:200]!r}"):
            outputs = {o.name: o for o in pb.InferResponse.FromString(r.content).outputs}
            got = np.frombuffer(outputs["probabilities"].raw_contents, np.float32).reshape(expected.shape)
            checks(np.allclose(got, expected, rtol=1e-5, atol=1e-6), f"protobuf NaN rows: probabilities differ from onnxruntime's, max |d| {np.nanmax(np.abs(got - expected))}")
        header = json.dumps({"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32", "parameters": {"binary_data_size": rows.nbytes}}],
                             "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
        r = client.post(server.url + "/v2/models/xgb/infer", content=header + rows.tobytes(),
                        headers={"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"})
        if checks(r.status_code == 200, f"binary-data extension with NaN rows: {r.status_code} {r.content[:200]!r}"):
            n = int(r.headers["inference-header-content-length"])
            got = np.frombuffer(r.content[n:], np.float32).reshape(expected.shape)
            checks(np.allclose(got, expected, rtol=1e-5, atol=1e-6), "binary-data NaN rows: probabilities differ from onnxruntime's")
        # JSON null is the same missing value.
        r = client.post(server.url + "/v2/models/xgb/infer", json=json_rows(rows))
        checks(r.status_code == 200, f"JSON null rows: {r.status_code} {r.text[:200]}")
    after = scrape(server)
    key = 'apus_requests_total{model="xgb",version="1",variant="",code="2xx"}'
    checks(delta(before, after, key) >= 3, f"metrics: {key} moved by {delta(before, after, key)}")
    check_bystanders(checks, bystanders, "after the NaN inputs")
    checks.done()


# ---------------------------------------------------------------------------------------------
# 3. Model faults
# ---------------------------------------------------------------------------------------------


def truncate_with_matching_manifest(version_dir: Path) -> None:
    """The ONNX file cut in half, the manifest's checksum updated to match: the parser sees it."""
    whole = (version_dir / "model.onnx").read_bytes()
    data = whole[: len(whole) // 2]
    (version_dir / "model.onnx").write_bytes(data)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    manifest["sha256"]["model.onnx"] = hashlib.sha256(data).hexdigest()
    (version_dir / "manifest.json").write_text(json.dumps(manifest))


def flip_a_byte(version_dir: Path) -> None:
    data = bytearray((version_dir / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version_dir / "model.onnx").write_bytes(bytes(data))


def truncate_only(version_dir: Path) -> None:
    data = (version_dir / "model.onnx").read_bytes()
    (version_dir / "model.onnx").write_bytes(data[: len(data) - 10])


def drop_manifest(version_dir: Path) -> None:
    (version_dir / "manifest.json").unlink()


FAULTS = {
    # name: (damage, text the FAILED reason must contain)
    "truncated_onnx": (truncate_with_matching_manifest, "not an ONNX model"),
    "checksum_mismatch": (flip_a_byte, "does not match the manifest"),
    "truncated_copy": (truncate_only, "does not match the manifest"),
    "partial_copy_without_manifest": (drop_manifest, "manifest.json is missing"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_broken_new_version_fails_with_its_reason_never_serves_and_the_old_one_keeps_answering(serve, bystanders_for, tmp_path, fault):
    damage, reason = FAULTS[fault]
    repo = tmp_path / "repo"
    bundle(repo, "lr", 1, "logreg_binary")
    server = serve(repo=repo)
    bystanders = bystanders_for(server)
    checks = Checks()
    with RequestLoop(server, "/v2/models/lr/infer") as load:
        load.wait_for(20)
        broken = copy_version(repo, "lr", 1, 2)
        damage(broken)
        before = scrape(server)
        r = admin_load(server, "lr")
        checks(r.status_code == 200, f"admin load while version 1 still serves: {r.status_code} {r.text}")
        answered = {v.get("version"): v for v in (r.json().get("versions", []) if r.status_code == 200 else [])}
        checks(answered.get("2", {}).get("state") == "FAILED" and reason in answered.get("2", {}).get("reason", ""),
               f"the load answer does not name the failed version and its reason: {r.text}")
        entry = index(server).get("2", {})
        checks(entry.get("state") == "FAILED" and reason in entry.get("reason", ""),
               f"index entry of the broken version: {entry} (expected FAILED naming {reason!r})")
        checks(index(server).get("1", {}).get("state") == "READY", f"version 1 after the failed load: {index(server).get('1')}")
        after = scrape(server)
        checks(delta(before, after, "apus_model_load_failures_total") == 1,
               f"metrics: apus_model_load_failures_total moved by {delta(before, after, 'apus_model_load_failures_total')}, expected 1")
        checks(after.get('apus_model_version_state{model="lr",version="2",state="FAILED"}') == 1,
               "metrics: apus_model_version_state{version=2,state=FAILED} is not 1")
        # Failed loads must not leak: retry the same broken files 20 times (a new mtime each
        # time is a new fingerprint, so each scan really loads them again).
        baseline = rss(server)
        target = broken / ("model.onnx" if (broken / "model.onnx").exists() else "reference.npy")
        for attempt in range(20):
            stamp = time.time() + attempt + 1
            os.utime(target, (stamp, stamp))
            admin_load(server, "lr")
        retried = scrape(server)
        checks(delta(after, retried, "apus_model_load_failures_total") == 20,
               f"metrics: 20 retries of the broken version moved apus_model_load_failures_total by {delta(after, retried, 'apus_model_load_failures_total')}")
        check_memory(checks, server, baseline, "20 failed loads of the broken version")
        load.wait_for(20)
        # The copy completes (or is replaced by a good one): it loads and serves.
        shutil.rmtree(broken)
        copy_version(repo, "lr", 1, 2)
        admin_load(server, "lr")
        checks(index(server).get("2", {}).get("state") == "READY", f"the repaired version 2: {index(server).get('2')}")
        load.wait_for(20)
    served = {version for _, version in load.results}
    checks(not load.failed(), f"requests failed during the fault: {load.summary()}")
    checks(served <= {"1", "2"} and "1" in served, f"versions served: {served}")
    last = [version for status, version in load.results[-10:]]
    checks(set(last) == {"2"}, f"the repaired version 2 does not serve: last versions {last}")
    check_bystanders(checks, bystanders, "after the broken version")
    checks.done()


def test_files_deleted_from_a_serving_version_keep_serving_from_memory_then_the_version_is_unloaded(serve, bystanders_for, tmp_path):
    repo = tmp_path / "repo"
    bundle(repo, "lr", 1, "logreg_binary")
    copy_version(repo, "lr", 1, 2)  # default policy: only the latest (2) serves
    server = serve(repo=repo)
    bystanders = bystanders_for(server)
    checks = Checks()
    with RequestLoop(server, "/v2/models/lr/infer") as load:
        load.wait_for(20)
        baseline, before = rss(server), scrape(server)
        (repo / "lr" / "2" / "model.onnx").unlink()
        (repo / "lr" / "2" / "reference.npy").unlink()
        admin_load(server, "lr")
        entry = index(server).get("2", {})
        checks(entry.get("state") == "READY" and "missing" in entry.get("reason", ""),
               f"version 2 with its files deleted: {entry} (expected still READY from memory, the reason naming the missing file)")
        mid = scrape(server)
        checks(delta(before, mid, "apus_model_load_failures_total") == 1,
               f"metrics: apus_model_load_failures_total moved by {delta(before, mid, 'apus_model_load_failures_total')} after the rescan")
        n = len(load.results) + 1  # the one request in flight during the change may see either state
        load.wait_for(30)
        checks({v for _, v in load.results[n:]} == {"2"}, f"after the deletion, served versions {[v for _, v in load.results[n:]][:10]} (expected 2, from memory)")
        shutil.rmtree(repo / "lr" / "2")  # the rest of the folder goes too
        admin_load(server, "lr")
        admin_load(server, "lr")  # a second scan frees what drained
        states = {v: e.get("state") for v, e in index(server).items()}
        checks(states.get("1") == "READY" and states.get("2") in (None, "UNLOADED", "DRAINING"),
               f"after the folder went: {states} (expected 2 unloaded, 1 serving)")
        after = scrape(server)
        checks(delta(mid, after, "apus_model_unloads_total") >= 1,
               f"metrics: apus_model_unloads_total moved by {delta(mid, after, 'apus_model_unloads_total')}")
        n = len(load.results) + 1  # the one request in flight during the change may see either state
        load.wait_for(30)
        checks({v for _, v in load.results[n:]} == {"1"}, f"after the folder went, served versions {set(v for _, v in load.results[n:])} (expected 1)")
    checks(not load.failed(), f"requests failed while files were deleted: {load.summary()}")
    check_memory(checks, server, baseline, "the deletion and unload")
    check_bystanders(checks, bystanders, "after the deletions")
    checks.done()


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only); unmounted at teardown."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full case (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    yield mount_point
    if subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem is full (ENOSPC); returns it."""
    path = directory / "filler"
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for _ in range(10_000):  # bounded: 640 MiB at most, the tmpfs is 1 MiB
            try:
                f.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
        else:
            raise AssertionError("the filesystem never filled")
    # Small writes too, until even one byte does not fit.
    with open(path, "ab", buffering=0) as f:
        for _ in range(65536):
            try:
                f.write(b"\0" * 512)
            except OSError:
                break
    return path


def test_disk_full_while_writing_settings_answers_a_clear_5xx_keeps_model_json_intact_and_keeps_serving(tmpfs, serve, bystanders_for):
    repo = tmpfs / "repo"
    bundle(repo, "lr", 1, "logreg_binary")
    copy_version(repo, "lr", 1, 2)
    settings = repo / "lr" / "model.json"
    settings.write_text(json.dumps({"version_policy": "all", "labels": {"stable": 1}}))
    server = serve(repo=repo)
    bystanders = bystanders_for(server)
    checks = Checks()
    original = settings.read_bytes()
    with RequestLoop(server, "/v2/models/lr/labels/stable/infer") as load:
        load.wait_for(20)
        baseline, before = rss(server), scrape(server)
        filler = fill(tmpfs)
        moves = []
        for _ in range(5):
            moves.append(httpx.put(f"{server.url}/v2/repository/models/lr/labels/stable", json={"version": 2}, timeout=10))
        split = httpx.put(f"{server.url}/v2/models/lr/split", timeout=10,
                          json={"salt": "s", "variants": [{"name": "a", "label": "stable", "weight": 10000}]})
        for r in moves + [split]:
            try:
                message = r.json().get("error", "")
            except ValueError:
                message = r.text
            checks(500 <= r.status_code < 600 and "No space left on device" in message,
                   f"{r.request.method} {r.request.url.path} on a full disk: {r.status_code} {r.text[:200]} (expected a 5xx naming ENOSPC)")
        checks(settings.read_bytes() == original, f"model.json changed on a full disk: {settings.read_bytes()[:200]!r}")
        leftovers = [p.name for p in settings.parent.iterdir() if p.name.startswith("model.json.")]
        checks(not leftovers, f"temporary settings files left behind: {leftovers}")
        n = len(load.results) + 1  # the one request in flight during the change may see either state
        load.wait_for(20)
        checks({v for _, v in load.results[n:]} == {"1"}, f"the label moved anyway: served {set(v for _, v in load.results[n:])}")
        full = scrape(server)
        checks(delta(before, full, "apus_repository_generation") == 0,
               f"metrics: apus_repository_generation moved by {delta(before, full, 'apus_repository_generation')} although nothing was published")
        # Space comes back: the same move now works, and is persisted.
        filler.unlink()
        r = httpx.put(f"{server.url}/v2/repository/models/lr/labels/stable", json={"version": 2}, timeout=10)
        checks(r.status_code == 200, f"label move once space is back: {r.status_code} {r.text}")
        checks(json.loads(settings.read_text()).get("labels") == {"stable": 2}, f"model.json after the move: {settings.read_text()}")
        n = len(load.results) + 1  # the one request in flight during the change may see either state
        load.wait_for(20)
        checks({v for _, v in load.results[n:]} == {"2"}, f"after the move, served {set(v for _, v in load.results[n:])}")
        after = scrape(server)
        checks(delta(full, after, "apus_repository_generation") >= 1, "metrics: apus_repository_generation did not move after the successful move")
    checks(not load.failed(), f"requests failed while the disk was full: {load.summary()}")
    check_memory(checks, server, baseline, "the disk-full episode")
    check_bystanders(checks, bystanders, "after the disk-full episode")
    server.kill()  # before the tmpfs is unmounted
    checks.done()


# ---------------------------------------------------------------------------------------------
# 4. Process faults
# ---------------------------------------------------------------------------------------------


def test_kill_9_under_load_then_restart_on_the_same_port_keeps_labels_and_split_from_disk(serve, bystanders_for, tmp_path):
    repo = tmp_path / "repo"
    bundle(repo, "lr", 1, "logreg_binary")
    copy_version(repo, "lr", 1, 2)
    (repo / "lr" / "model.json").write_text(json.dumps({"version_policy": "all", "labels": {"stable": 1, "canary": 1}}))
    port = free_port()
    first = serve(repo=repo, port=port)
    checks = Checks()
    split = {"salt": "kill-9", "variants": [{"name": "stable", "label": "stable", "weight": 7000},
                                            {"name": "canary", "label": "canary", "weight": 3000}]}
    load = spawn([str(apus_binary().parent / "apus-loadtest"), "--port", str(port), "--model", "lr", "--version", "stable",
                             "--rate", "200", "--duration", "30", "--connections", "2", "--streams", "4", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        moved = [httpx.put(f"{first.url}/v2/repository/models/lr/labels/stable", json={"version": 2}, timeout=10),
                 httpx.put(f"{first.url}/v2/repository/models/lr/labels/canary", json={"version": 1}, timeout=10),
                 httpx.put(f"{first.url}/v2/models/lr/split", json=split, timeout=10)]
        for r in moved:
            checks(r.status_code == 200, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
        expected_split = httpx.get(f"{first.url}/v2/models/lr/split", timeout=10).json()["split"]
        time.sleep(0.5)  # the load goes on through the moved label
        first.signal(signal.SIGKILL)
        checks(first.wait_exit(5) == -signal.SIGKILL, "the first server did not die of SIGKILL")
    finally:
        load.kill()
        load.wait(10)

    second = serve(repo=repo, port=port)
    checks(second.port == port, f"restarted on port {second.port}, not {port}")
    bystanders = bystanders_for(second)
    with httpx.Client(timeout=10) as client:
        r = client.post(f"{second.url}/v2/models/lr/labels/stable/infer", json=ROW)
        checks(r.status_code == 200 and r.headers.get("apus-model-version") == "2",
               f"label stable after the restart: {r.status_code} version {r.headers.get('apus-model-version')} (moved to 2 before the kill)")
        got_split = client.get(f"{second.url}/v2/models/lr/split").json()["split"]
        checks(got_split == expected_split, f"split after the restart {got_split} != before the kill {expected_split}")
        variants = {}
        for i in range(60):
            r = client.post(f"{second.url}/v2/models/lr/infer", json=ROW, headers={"apus-routing-key": f"user-{i}"})
            checks(r.status_code == 200, f"routed request {i}: {r.status_code} {r.text[:100]}")
            variants[r.headers.get("apus-variant")] = r.headers.get("apus-model-version")
        checks(variants == {"stable": "2", "canary": "1"}, f"variants -> versions after the restart: {variants}")
    metrics = scrape(second)
    checks(metrics.get("apus_model_loads_total") == 2, f"metrics: apus_model_loads_total {metrics.get('apus_model_loads_total')} after the restart (2 versions from disk)")
    assigned = sum(v for k, v in metrics.items() if k.startswith('apus_ab_assignments_total{model="lr"'))
    checks(assigned >= 60, f"metrics: apus_ab_assignments_total for lr is {assigned} after 60 routed requests")
    check_bystanders(checks, bystanders, "after the restart")
    checks.done()
