"""Transport acceptance tests against the real `apus serve` binary (127.0.0.1 only).

Run: APUS_BIN=.build/debug/apus python3 -m pytest -q Tests/integration

Every wait is a poll with a deadline; every loop is bounded in count and time. Abuse tests keep two
well-behaved connections (HTTP/1.1 keep-alive and HTTP/2), opened before the abuse, and require
both to be served again afterwards on the same connections.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import pytest

from apus_h1 import H1Conn, request_bytes
from apus_h2 import (
    COMPRESSION_ERROR,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FRAME_SIZE_ERROR,
    HEADERS,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SETTINGS,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    WINDOW_UPDATE,
    GoAwayFrame,
    RawH2,
    data_frame,
    ping_frame,
    priority_frame,
    raw_frame,
    settings_frame,
)
from apus_net import free_port, wait_until_refused, wait_until_server_read_everything

LIVE = "/v2/health/live"
INFER = "/v2/models/nope/infer"  # unknown model: a complete 404 (or 405) once the body is in
LIVE_BODY = b'{"live":true}'


def curl(*args: str, timeout: float = 20.0) -> str:
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", *args],
        capture_output=True, timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"curl {args} failed ({result.returncode}): {result.stderr.decode()}"
    return result.stdout.decode().strip()


def wait_closed_within(conn, limit: float, *, at_least: float = 0.0, started: float | None = None) -> float:
    """Waits for the server to close `conn`; returns the seconds from `started`."""
    started = time.monotonic() if started is None else started
    assert conn.wait_closed(limit), f"server did not close the connection within {limit}s; {getattr(conn, 'describe', str)()}"
    elapsed = time.monotonic() - started
    assert elapsed >= at_least, f"closed after {elapsed:.2f}s, before the {at_least:.2f}s it should have waited"
    return elapsed


# ---------------------------------------------------------------------------------------------
# 1. curl over every protocol path
# ---------------------------------------------------------------------------------------------


def test_curl_http2_prior_knowledge_gets_200_over_http2(shared_server):
    assert curl("--http2-prior-knowledge", shared_server.url + LIVE) == "200 2"


def test_curl_http2_h2c_upgrade_gets_200_over_http2(shared_server):
    assert curl("--http2", shared_server.url + LIVE) == "200 2"


def test_curl_http2_with_a_body_is_served_over_http11_not_dropped(shared_server):
    # An upgrade request with a body is not upgraded (the body would have to be replayed into
    # stream 1). Declining used to go through errorCaught, which closed the connection: curl
    # printed "Empty reply from server".
    assert curl("--http2", "-d", "{}", shared_server.url + "/v2/models/nope/infer") == "404 1.1"


def test_upgrade_without_the_upgrade_connection_option_is_served_over_http11_with_its_pipelined_requests(start_server):
    # NIO's upgrade handler accepted it while its HTTP parser did not treat it as an upgrade, so
    # the requests behind it reached the HTTP/2 handler as parsed HTTP/1 parts and the server
    # trapped. Now it is declined (RFC 9110 7.8) and everything is served over HTTP/1.1.
    server = start_server()
    upgrade = (b"GET " + LIVE.encode() + b" HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
               b"Connection: HTTP2-Settings\r\n\r\n")
    conn = H1Conn(server.port)
    try:
        conn.send(upgrade + request_bytes("GET", LIVE) * 3)
        responses = [conn.read_response() for _ in range(4)]
        assert [r.status for r in responses] == [200] * 4 and all(r.body == LIVE_BODY for r in responses)
    finally:
        conn.close()
    probe = H1Conn(server.port)
    try:
        assert probe.get(LIVE).status == 200
    finally:
        probe.close()
    assert server.proc.poll() is None, "the server exited"


def test_plain_curl_gets_200_over_http11(shared_server):
    assert curl(shared_server.url + LIVE) == "200 1.1"


def test_expect_100_continue_is_answered_before_the_body_over_both_protocols(shared_server):
    # curl sends "Expect: 100-continue" for bodies over 1 MB and then waited a second for an
    # answer that never came, on every such request. The interim answer comes as soon as the
    # head passed the limits, before any of the body is sent.
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/nope/infer HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, f"closed after {interim!r}"
            interim += chunk
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        sock.sendall(b"{}")
        assert sock.recv(4096).startswith(b"HTTP/1.1 404 "), "the final answer follows the body"
    for protocol, interim in (([], "< HTTP/1.1 100 Continue"), (["--http2-prior-knowledge"], "< HTTP/2 100")):
        out = subprocess.run(["curl", "-sv", "--max-time", "10", *protocol, "-o", "/dev/null", "-H", "Expect: 100-continue",
                              "-d", "{}", shared_server.url + "/v2/models/nope/infer"], capture_output=True, text=True, timeout=20)
        assert interim in out.stderr and "404" in out.stderr, out.stderr
    # A body over the limit is refused at once, and never sent.
    refused = curl("-H", "Expect: 100-continue", "-H", "Content-Length: 999999999", "--data-binary", "x", shared_server.url + INFER)
    assert refused == "413 1.1", refused


# ---------------------------------------------------------------------------------------------
# 2. h2load
# ---------------------------------------------------------------------------------------------


def test_h2load_100000_requests_4_connections_32_streams_all_succeed(shared_server):
    result = subprocess.run(
        ["h2load", "-n", "100000", "-c", "4", "-m", "32", shared_server.url + LIVE],
        capture_output=True, timeout=70, check=False,
    )
    out = result.stdout.decode()
    match = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    assert match, f"unexpected h2load output (exit {result.returncode}):\n{out}\n{result.stderr.decode()}"
    total, started, done, succeeded, failed, errored, timeouts = map(int, match.groups())
    assert (total, succeeded, failed, errored, timeouts) == (100000, 100000, 0, 0, 0), out
    assert "status codes: 100000 2xx" in out, out
    assert result.returncode == 0, out


def test_stream_gauges_count_every_stream_and_return_to_zero_once_answers_are_sent(start_server):
    server = start_server()
    result = subprocess.run(["h2load", "-n", "3000", "-c", "2", "-m", "16", server.url + LIVE], capture_output=True, timeout=60, check=False)
    assert "3000 succeeded, 0 failed" in result.stdout.decode(), result.stdout.decode()
    # Plain HTTP/1.1 scrapes: they open no HTTP/2 stream themselves.
    metrics = subprocess.run(["curl", "-s", server.url + "/metrics"], capture_output=True, text=True, timeout=10, check=True).stdout
    values = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(apus_http2_streams_\w+) (\S+)$", metrics, re.M)}
    assert values.get("apus_http2_streams_total") == 3000, values
    assert values.get("apus_http2_streams_open") == 0, values


# ---------------------------------------------------------------------------------------------
# 3. HTTP/2 preface, SETTINGS and HEADERS in arbitrary splits
# ---------------------------------------------------------------------------------------------


def _h2_opening(conn: RawH2) -> bytes:
    return PREFACE + settings_frame() + conn.request_frame(1, "GET", LIVE)


def test_http2_preface_settings_and_headers_sent_one_byte_per_send_get_200(shared_server):
    conn = RawH2(shared_server.port)
    try:
        data = _h2_opening(conn)
        for i in range(len(data)):
            conn.send(data[i:i + 1])
            time.sleep(0.001)  # lets most bytes arrive in their own read; correctness does not depend on it
        response = conn.response(1, timeout=5)
        assert (response.status, response.body, response.reset_code) == (200, LIVE_BODY, None), conn.describe()
        # The connection goes on working after the odd start.
        conn.send(settings_frame(ack=True) + conn.request_frame(3, "GET", LIVE))
        assert conn.response(3).status == 200
        assert not conn.goaways, conn.describe()
    finally:
        conn.close()


# Offsets into PREFACE(24) + SETTINGS(9) + HEADERS(9 + block).
SPLITS = {
    "inside_preface": [1, 12, 23],
    "preface_then_settings": [24],
    "inside_settings_header": [24 + 4],
    "settings_then_headers": [24 + 9],
    "inside_headers_frame_header": [24 + 9 + 5],
    "inside_header_block": [24 + 9 + 9 + 3],
    "everywhere": [3, 17, 24, 26, 33, 36, 42, 45],
}


@pytest.mark.parametrize("points", list(SPLITS.values()), ids=list(SPLITS.keys()))
def test_http2_opening_split_at_several_points_gets_200(shared_server, points):
    conn = RawH2(shared_server.port)
    try:
        data = _h2_opening(conn)
        assert points[-1] < len(data)
        bounds = [0, *points, len(data)]
        for start, end in zip(bounds, bounds[1:]):
            conn.send(data[start:end])
            time.sleep(0.005)
        response = conn.response(1, timeout=5)
        assert (response.status, response.body, response.reset_code) == (200, LIVE_BODY, None), conn.describe()
    finally:
        conn.close()


def test_http11_request_sent_one_byte_per_send_gets_200(shared_server):
    conn = H1Conn(shared_server.port)
    try:
        data = request_bytes("GET", LIVE)
        for i in range(len(data)):
            conn.send(data[i:i + 1])
            time.sleep(0.001)
        response = conn.read_response()
        assert (response.status, response.body) == (200, LIVE_BODY)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# 4. HTTP/1.1 pipelining and keep-alive
# ---------------------------------------------------------------------------------------------


def test_http11_three_pipelined_requests_in_one_send_get_three_200_in_order(shared_server):
    conn = H1Conn(shared_server.port)
    try:
        conn.send(request_bytes("GET", LIVE) + request_bytes("GET", "/v2/health/ready") + request_bytes("GET", "/v2"))
        responses = [conn.read_response() for _ in range(3)]
        assert [r.status for r in responses] == [200, 200, 200]
        assert responses[0].body == LIVE_BODY
        assert responses[1].body == b'{"ready":true}'
        assert b'"name":"apus"' in responses[2].body
        assert all(r.header("connection") == "keep-alive" for r in responses)
        # And the connection stays usable after the pipelined batch.
        assert conn.get(LIVE).status == 200
        assert conn.is_open()
    finally:
        conn.close()


def test_http11_client_that_pipelines_200_requests_and_hangs_up_leaves_the_server_serving(start_server):
    # It used to end the server: a write failing while the first read was handled made NIO read
    # the socket re-entrantly, the protocol sniffer (still in the pipeline) installed a second
    # set of HTTP/1 handlers, and the next request crashed in the mixed pipeline.
    server = start_server()
    for attempt in range(5):
        conn = H1Conn(server.port)
        conn.send(request_bytes("GET", LIVE) * 200)
        conn.sock.recv(100)
        conn.close()
        probe = H1Conn(server.port)
        try:
            assert probe.get(LIVE).status == 200, f"attempt {attempt}"
        finally:
            probe.close()
    assert server.proc.poll() is None, "the server exited"


def test_http11_keep_alive_serves_sequential_requests_on_one_connection(shared_server):
    conn = H1Conn(shared_server.port)
    try:
        for path, status in [(LIVE, 200), ("/v2", 200), ("/nope", 404), (LIVE, 200), ("/v2/health/ready", 200)]:
            response = conn.get(path)
            assert response.status == status, (path, response)
            assert response.header("connection") == "keep-alive", (path, response.headers)
            assert conn.is_open(), f"server closed the keep-alive connection after {path}"
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# 5. Limits: each abuse gets its documented answer; bystander connections keep being served
# ---------------------------------------------------------------------------------------------


def test_http11_header_bytes_over_limit_get_431_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-header-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    response = conn.request("GET", LIVE, headers=[("X-Big", "a" * 2000)])
    assert response.status == 431, response
    wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_header_bytes_over_limit_get_431_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-header-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.request_frame(1, "GET", LIVE, extra=[("x-big", "a" * 2000)]))
    response = conn.response(1)
    assert response.status == 431, conn.describe()
    # The header block was still decoded (HPACK stays in sync): the connection goes on.
    conn.send(conn.request_frame(3, "GET", LIVE))
    assert conn.response(3).status == 200, conn.describe()
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http11_header_count_over_limit_gets_431_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-header-count", "10")
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    response = conn.request("GET", LIVE, headers=[(f"X-H{i}", "v") for i in range(20)])
    assert response.status == 431, response
    wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_header_count_over_limit_gets_431_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-header-count", "10")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.request_frame(1, "GET", LIVE, extra=[(f"x-h{i}", "v") for i in range(20)]))
    assert conn.response(1).status == 431, conn.describe()
    conn.send(conn.request_frame(3, "GET", LIVE))
    assert conn.response(3).status == 200, conn.describe()
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


MALFORMED_HEAD = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", LIVE)]


def check_malformed_answered_and_connection_goes_on(conn, bystanders, named: str) -> None:
    """Stream 1 was answered 400 naming `named`; HPACK stayed in sync and the connection is
    whole (stream 3 is served); the counter moved; the bystander connections are still served."""
    response = conn.response(1)
    assert response.status == 400, conn.describe()
    assert named in response.body.decode(errors="replace"), response.body
    conn.send(conn.request_frame(3, "GET", LIVE))
    assert conn.response(3).status == 200, conn.describe()
    assert bystanders.counter_moved("apus_malformed_requests_total") >= 1, "apus_malformed_requests_total did not move"
    bystanders.check()


@pytest.mark.parametrize("fields, named", [
    (MALFORMED_HEAD + [("Content-Type", "text/plain")], "Content-Type"),
    (MALFORMED_HEAD + [("x bad", "1")], "x bad"),
    (MALFORMED_HEAD + [("x-crlf", "a\r\nx-injected: 1")], "x-crlf"),
    (MALFORMED_HEAD + [("x-nul", "a\x00b")], "x-nul"),
    (MALFORMED_HEAD + [("x-space", "a ")], "x-space"),
    (MALFORMED_HEAD + [("connection", "keep-alive")], "connection"),
    (MALFORMED_HEAD + [("transfer-encoding", "chunked")], "transfer-encoding"),
    (MALFORMED_HEAD + [("te", "gzip")], "te"),
    (MALFORMED_HEAD + [("content-length", "-1")], "content-length"),
    (MALFORMED_HEAD + [("content-length", "0"), ("content-length", "0")], "content-length"),
    (MALFORMED_HEAD + [("x-a", "1"), (":path", "/again")], ":path"),
    (MALFORMED_HEAD + [(":method", "GET")], ":method"),
    (MALFORMED_HEAD + [(":status", "200")], ":status"),
    ([(":method", "GET"), (":scheme", "http"), (":authority", "a")], ":path"),
    ([(":method", "GET"), (":authority", "a"), (":path", LIVE)], ":scheme"),
    ([(":method", "GET"), (":scheme", "http"), (":path", LIVE)], "authority"),
    ([(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "v2/health/live")], ":path"),
    ([(":method", "GET"), (":scheme", "http"), (":authority", "a b"), (":path", LIVE)], ":authority"),
])
def test_http2_malformed_header_blocks_get_400_naming_the_field_and_the_connection_goes_on(start_server, bystanders_for, fields, named):
    # RFC 9113 8.1.1-8.3: the transport checks HTTP/2's message rules itself (nghttp2's checks
    # are off for speed), so each kind of malformed block is sent over a real connection.
    server = start_server()
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.headers_frame(1, fields))
    check_malformed_answered_and_connection_goes_on(conn, bystanders, named)


@pytest.mark.parametrize("declared, chunks, named", [
    ("3", [b"ab", b"cd"], "longer than its content-length of 3"),
    ("3", [b"ab"], "2 bytes is shorter than its content-length of 3"),
])
def test_http2_body_unlike_its_content_length_gets_400_and_the_connection_goes_on(start_server, bystanders_for, declared, chunks, named):
    server = start_server()
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.headers_frame(1, MALFORMED_HEAD + [("content-length", declared)], end_stream=False))
    for i, chunk in enumerate(chunks):
        conn.send(data_frame(1, chunk, end_stream=i == len(chunks) - 1))
    check_malformed_answered_and_connection_goes_on(conn, bystanders, named)


def test_http11_declared_body_over_limit_gets_413_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-body-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    conn.send(request_bytes("POST", INFER, headers=[("Content-Type", "application/json"), ("Content-Length", "4096")]))
    response = conn.read_response()
    assert response.status == 413, response
    wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http11_chunked_body_over_limit_gets_413_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-body-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    chunk = b"x" * 2048
    conn.send(request_bytes("POST", INFER, headers=[("Transfer-Encoding", "chunked")]) + b"800\r\n" + chunk + b"\r\n")
    response = conn.read_response()
    assert response.status == 413, response
    wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_declared_body_over_limit_gets_413_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-body-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.request_frame(1, "POST", INFER, extra=[("content-length", "4096")], end_stream=False))
    response = conn.response(1)
    assert response.status == 413, conn.describe()
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_streamed_body_over_limit_gets_413_while_other_connections_are_served(start_server, bystanders_for):
    server = start_server("--max-body-bytes", "1024")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    conn.send(conn.request_frame(1, "POST", INFER, end_stream=False) + data_frame(1, b"x" * 2048))
    response = conn.response(1)
    assert response.status == 413, conn.describe()
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_client_exceeding_acknowledged_max_concurrent_streams_gets_goaway_protocol_error(start_server, bystanders_for):
    # Documented behaviour (nghttp2's): once the client has ACKed our SETTINGS, opening more
    # streams than advertised is a protocol violation answered with GOAWAY PROTOCOL_ERROR; other
    # connections are unaffected. Before the ACK, extra streams are refused (next test).
    server = start_server("--max-concurrent-streams", "2")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    settings = conn.handshake()  # also ACKs the server's SETTINGS, so the limit is in force
    assert settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 2, settings
    conn.send(b"".join(conn.request_frame(sid, "POST", INFER, end_stream=False) for sid in (1, 3, 5)))
    try:
        conn.read_until(lambda _f: len(conn.goaways) > 0, timeout=5)
    except TimeoutError:
        pass
    assert [g.error_code for g in conn.goaways] == [PROTOCOL_ERROR], conn.describe()
    assert bystanders.counter_moved("apus_protocol_errors_total") >= 1, "apus_protocol_errors_total did not move"
    bystanders.check()


def test_http2_streams_beyond_max_concurrent_streams_sent_before_settings_ack_are_refused_with_refused_stream(start_server, bystanders_for):
    server = start_server("--max-concurrent-streams", "2")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    # Like a client that starts requests before it has seen the server's SETTINGS.
    conn.send(PREFACE + settings_frame() + b"".join(conn.request_frame(sid, "POST", INFER, end_stream=False) for sid in (1, 3, 5, 7)))
    try:
        conn.read_until(lambda _f: len(conn.resets(5)) and len(conn.resets(7)), timeout=5)
    except TimeoutError:
        pass
    assert (conn.server_settings or {}).get(SETTINGS_MAX_CONCURRENT_STREAMS) == 2, conn.describe()
    assert [f.error_code for f in conn.resets(5)] == [REFUSED_STREAM], conn.describe()
    assert [f.error_code for f in conn.resets(7)] == [REFUSED_STREAM], conn.describe()
    assert not conn.goaways and not conn.resets(1) and not conn.resets(3), conn.describe()
    conn.send(settings_frame(ack=True) + data_frame(1, b"{}", end_stream=True) + data_frame(3, b"{}", end_stream=True))
    for sid in (1, 3):
        response = conn.response(sid)
        assert response.reset_code is None and response.status in (404, 405), conn.describe()
    bystanders.check()


def test_idle_timeout_closes_idle_connections_http2_with_goaway_no_error_while_active_ones_are_served(start_server, bystanders_for):
    idle = 1.0
    server = start_server("--idle-timeout", str(idle))
    bystanders = bystanders_for(server)
    started = {}
    started["silent"] = time.monotonic()
    silent = H1Conn(server.port)  # never sends a byte
    h1 = H1Conn(server.port)
    assert h1.get(LIVE).status == 200
    started["http1"] = time.monotonic()
    h2 = RawH2(server.port)
    h2.handshake()
    h2.send(h2.request_frame(1, "GET", LIVE))
    assert h2.response(1).status == 200
    started["http2"] = time.monotonic()
    conns = {"silent": silent, "http1": h1, "http2": h2}
    closed_after: dict[str, float] = {}
    deadline = time.monotonic() + idle + 4
    while len(closed_after) < len(conns) and time.monotonic() < deadline:
        for name, conn in conns.items():
            if name not in closed_after and conn.wait_closed(0.05):
                closed_after[name] = time.monotonic() - started[name]
        bystanders.check("while idle connections time out")  # active connections never idle out
    assert set(closed_after) == set(conns), f"not closed within {idle + 4}s: {set(conns) - set(closed_after)}"
    for name, elapsed in closed_after.items():
        assert elapsed >= idle * 0.8, f"{name} closed after {elapsed:.2f}s, before the idle timeout"
    assert not silent.buf and not h1.buf, "idle HTTP/1 connections are closed without a response"
    assert [g.error_code for g in h2.goaways] == [NO_ERROR], h2.describe()
    bystanders.check()


def test_http11_slowloris_headers_get_408_or_close_after_header_timeout_while_other_connections_are_served(start_server, bystanders_for):
    timeout = 1.0
    server = start_server("--header-timeout", str(timeout))
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    started = time.monotonic()
    conn.send(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    deadline = started + timeout + 4
    closed = False
    while time.monotonic() < deadline:  # one header byte every 0.2 s; never the end of the head
        try:
            if not conn._fill(min(deadline, time.monotonic() + 0.2)):
                closed = True
                break
            if b"\r\n\r\n" in conn.buf:
                break
        except TimeoutError:
            conn.try_send(b"a")
    elapsed = time.monotonic() - started
    bystanders.check("after the header timeout fired")  # also tells whether the process survived
    assert closed or b"\r\n\r\n" in conn.buf, f"neither 408 nor close within {timeout + 4}s"
    assert elapsed >= timeout * 0.8, f"answered/closed after {elapsed:.2f}s, before the header timeout"
    if conn.buf:  # the documented answer: 408, then close
        response = conn.read_response(timeout=1)
        assert response.status == 408, response
        wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_unfinished_header_block_gets_goaway_after_header_timeout_while_other_connections_are_served(start_server, bystanders_for):
    timeout = 1.0
    server = start_server("--header-timeout", str(timeout))
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    started = time.monotonic()
    # HEADERS without END_HEADERS: the header block stays open (no CONTINUATION follows).
    conn.send(conn.headers_frame(1, [(":method", "GET"), (":scheme", "http"), (":path", LIVE)], end_stream=True, end_headers=False))
    wait_closed_within(conn, timeout + 4, at_least=timeout * 0.8, started=started)
    assert conn.goaways, f"expected a GOAWAY before the close: {conn.describe()}"
    # TransportLimits documents PROTOCOL_ERROR; the state machine sends ENHANCE_YOUR_CALM.
    assert conn.goaways[-1].error_code in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM), conn.describe()
    assert conn.peek_response(1) is None or conn.peek_response(1).status is None, conn.describe()
    assert bystanders.counter_moved("apus_goaway_enhance_your_calm_total") >= 1, "apus_goaway_enhance_your_calm_total did not move"
    bystanders.check()


def test_http11_slow_body_gets_408_after_body_timeout_while_other_connections_are_served(start_server, bystanders_for):
    timeout = 1.0
    server = start_server("--body-timeout", str(timeout))
    bystanders = bystanders_for(server)
    conn = H1Conn(server.port)
    started = time.monotonic()
    conn.send(request_bytes("POST", INFER, headers=[("Content-Type", "application/json"), ("Content-Length", "100")]) + b"{" * 10)
    response = conn.read_response(timeout=timeout + 4)
    elapsed = time.monotonic() - started
    assert response.status == 408, response
    assert elapsed >= timeout * 0.8, f"408 after {elapsed:.2f}s, before the body timeout"
    wait_closed_within(conn, 3)
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def test_http2_slow_body_gets_408_after_body_timeout_while_other_connections_are_served(start_server, bystanders_for):
    timeout = 1.0
    server = start_server("--body-timeout", str(timeout))
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    started = time.monotonic()
    conn.send(conn.request_frame(1, "POST", INFER, end_stream=False) + data_frame(1, b"{" * 10))
    response = conn.response(1, timeout=timeout + 4)
    elapsed = time.monotonic() - started
    assert response.status == 408, conn.describe()
    assert elapsed >= timeout * 0.8, f"408 after {elapsed:.2f}s, before the body timeout"
    assert not conn.goaways, conn.describe()
    assert bystanders.counter_moved("apus_limit_rejections_total") >= 1, "apus_limit_rejections_total did not move"
    bystanders.check()


def _junk(conn: RawH2, kind: str) -> bytes:
    if kind == "ping":
        return ping_frame()
    if kind == "priority":
        return priority_frame(1)
    if kind == "empty_data":
        return data_frame(1, b"")
    if kind == "settings":
        return settings_frame()
    if kind == "unknown_type":
        return raw_frame(0xFA, 0, 0, b"")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["ping", "priority", "empty_data", "settings", "unknown_type"])
def test_http2_junk_frame_flood_gets_goaway_enhance_your_calm_while_other_connections_are_served(start_server, bystanders_for, kind):
    server = start_server("--max-junk-frames", "50")
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.handshake()
    if kind == "empty_data":  # empty DATA needs an open stream
        conn.send(conn.request_frame(1, "POST", INFER, end_stream=False))
    conn.try_send(_junk(conn, kind) * 200)
    wait_closed_within(conn, 5)
    assert conn.goaways, f"closed without GOAWAY: {conn.describe()}"
    assert conn.goaways[-1].error_code == ENHANCE_YOUR_CALM, conn.describe()
    assert bystanders.counter_moved("apus_goaway_enhance_your_calm_total") >= 1, "apus_goaway_enhance_your_calm_total did not move"
    bystanders.check()


def test_http2_answered_requests_earn_junk_budget_back(start_server):
    server = start_server("--max-junk-frames", "50")
    conn = RawH2(server.port)
    try:
        conn.handshake()  # our SETTINGS: 1 junk frame
        conn.send(ping_frame() * 40)  # 41
        for i in range(20):  # 20 answered requests earn 20 back: 21
            sid = 1 + 2 * i
            conn.send(conn.request_frame(sid, "GET", LIVE))
            assert conn.response(sid).status == 200, conn.describe()
        conn.send(ping_frame() * 25)  # 46: still within 50 (66 without the refunds)
        conn.send(conn.request_frame(41, "GET", LIVE))
        assert conn.response(41).status == 200, conn.describe()
        assert not conn.goaways, conn.describe()
    finally:
        conn.close()


GARBAGE = {
    "http1_text_after_preface": PREFACE + b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "first_frame_not_settings": PREFACE + ping_frame(),
    "settings_length_not_multiple_of_6": PREFACE + raw_frame(SETTINGS, 0, 0, b"\0" * 5),
    "headers_on_stream_0": PREFACE + settings_frame() + raw_frame(HEADERS, END_HEADERS | END_STREAM, 0, b"\x82"),
    "undecodable_hpack_block": PREFACE + settings_frame() + raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\xff\xff"),
    "window_update_of_zero": PREFACE + settings_frame() + raw_frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"),
    "ping_of_wrong_length": PREFACE + settings_frame() + raw_frame(6, 0, 0, b"\0" * 7),
    "binary_garbage": PREFACE + bytes(range(256)) * 4,
}


@pytest.mark.parametrize("data", list(GARBAGE.values()), ids=list(GARBAGE.keys()))
def test_http2_malformed_frames_after_preface_close_the_connection_while_other_connections_are_served(start_server, bystanders_for, data):
    server = start_server()
    bystanders = bystanders_for(server)
    conn = RawH2(server.port)
    conn.try_send(data)
    wait_closed_within(conn, 5)
    for goaway in conn.goaways:
        assert goaway.error_code in (PROTOCOL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR), conn.describe()
    assert conn.peek_response(1) is None or conn.peek_response(1).status is None, conn.describe()
    assert bystanders.counter_moved("apus_protocol_errors_total") >= 1, "apus_protocol_errors_total did not move"
    bystanders.check()


# ---------------------------------------------------------------------------------------------
# 6. SIGTERM drain
# ---------------------------------------------------------------------------------------------


def test_sigterm_drain_finishes_in_flight_requests_sends_goaway_refuses_new_connections_and_exits_0(start_server):
    drain = 8.0
    server = start_server("--drain-timeout", str(drain))
    port = server.port
    # HTTP/2 request in flight: headers and half the body.
    h2 = RawH2(port)
    h2.handshake()
    h2.send(h2.request_frame(1, "POST", INFER, extra=[("content-type", "application/json"), ("content-length", "10")], end_stream=False)
            + data_frame(1, b'{"in'))
    # HTTP/1.1 request in flight: headers and half the body.
    h1 = H1Conn(port)
    h1.send(request_bytes("POST", INFER, headers=[("Content-Type", "application/json"), ("Content-Length", "10")]) + b'{"in')
    # An idle keep-alive connection.
    idle = H1Conn(port)
    assert idle.get(LIVE).status == 200
    # Both partial requests must have been read by the server before the signal: a PING answered
    # after them on HTTP/2, an empty server receive queue on HTTP/1.1.
    h2.send(ping_frame(b"inflight"))
    assert h2.read_until(lambda f: f.type == 6 and "ACK" in f.flags, timeout=5) is not None, h2.describe()
    wait_until_server_read_everything(h1.sock)
    assert h1.is_open() and not h2.goaways

    signalled = time.monotonic()
    server.terminate()
    assert wait_until_refused(port, 5), "new connections still accepted after SIGTERM"
    goaway = h2.read_until(lambda f: isinstance(f, GoAwayFrame), timeout=5)
    assert goaway is not None, f"no GOAWAY after SIGTERM: {h2.describe()}"
    assert goaway.error_code == NO_ERROR, h2.describe()
    wait_closed_within(idle, 3)  # an idle keep-alive connection is closed at once
    assert server.running, "server exited with requests still in flight"

    # Finish both bodies: both requests get a whole response, not a reset.
    h2.send(data_frame(1, b'x":12', end_stream=False) + data_frame(1, b"}", end_stream=True))
    response = h2.response(1)
    assert response.reset_code is None and response.complete, h2.describe()
    assert response.status in (404, 405), h2.describe()
    h1.send(b'x":12}')
    response1 = h1.read_response()
    assert response1.status in (404, 405), response1
    assert response1.header("connection") == "close", response1.headers
    wait_closed_within(h1, 3)
    wait_closed_within(h2, 3)
    assert all(g.error_code == NO_ERROR for g in h2.goaways), h2.describe()
    assert h2.goaways[-1].last_stream_id == 1, h2.describe()

    code = server.wait_exit(drain + 1 - (time.monotonic() - signalled))
    assert code == 0, f"exit code {code} (None: still running {drain + 1}s after SIGTERM)"
    assert time.monotonic() - signalled < drain + 1
    assert "drained" in server.log()


def test_sigterm_force_closes_a_stuck_request_after_drain_timeout_and_exits_0(start_server):
    drain = 1.5
    server = start_server("--drain-timeout", str(drain))
    h2 = RawH2(server.port)
    h2.handshake()
    h2.send(h2.request_frame(1, "POST", INFER, end_stream=False) + data_frame(1, b"{"))
    h2.send(ping_frame(b"12345678"))
    h2.read_until(lambda f: f.type == 6 and "ACK" in f.flags, timeout=5)  # the stream is open server-side
    signalled = time.monotonic()
    server.terminate()
    code = server.wait_exit(drain + 3)
    elapsed = time.monotonic() - signalled
    assert code == 0, f"exit code {code} (None: still running {drain + 3}s after SIGTERM)"
    assert elapsed >= drain * 0.8, f"exited after {elapsed:.2f}s, before the drain timeout, with a request in flight"
    assert h2.wait_closed(2)
    assert h2.goaways and h2.goaways[0].error_code == NO_ERROR, h2.describe()


# ---------------------------------------------------------------------------------------------
# 7. Restart on the same port
# ---------------------------------------------------------------------------------------------


def _server_side_states(port: int) -> set[str]:
    """TCP states of sockets whose local port is `port` (from /proc/net/tcp), listeners excluded."""
    names = {"01": "ESTABLISHED", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0B": "CLOSING"}
    states = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.split(":")[1], 16) == port and state != "0A":
                states.add(names.get(state, state))
    return states


def test_restart_on_same_port_right_after_sigkill_with_open_connections_binds_and_serves_200(start_server):
    port = free_port()
    first = start_server(port=port)
    assert first.port == port
    closed_by_us = H1Conn(port)
    left_open = H1Conn(port)
    assert closed_by_us.get(LIVE).status == 200 and left_open.get(LIVE).status == 200
    first.signal(signal.SIGKILL)
    assert first.wait_exit(5) == -signal.SIGKILL
    assert closed_by_us.wait_closed(3)
    closed_by_us.close()  # server side: TIME_WAIT; `left_open` keeps FIN_WAIT2/CLOSE_WAIT pairs alive
    assert _server_side_states(port) & {"TIME_WAIT", "FIN_WAIT2", "FIN_WAIT1", "CLOSING"}, _server_side_states(port)

    second = start_server(port=port)
    assert second.port == port
    assert curl(f"http://127.0.0.1:{port}{LIVE}") == "200 1.1"
    assert curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}{LIVE}") == "200 2"
    left_open.close()


def test_restart_on_same_port_right_after_sigterm_shutdown_binds_and_serves_200(start_server):
    port = free_port()
    first = start_server(port=port)
    conn = H1Conn(port)
    assert conn.get(LIVE).status == 200  # keep-alive: the server closes it while draining
    first.terminate()
    assert first.wait_exit(10) == 0
    assert conn.wait_closed(3)
    conn.close()
    second = start_server(port=port)
    assert second.port == port
    assert curl(f"http://127.0.0.1:{port}{LIVE}") == "200 1.1"
    assert curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}{LIVE}") == "200 2"
