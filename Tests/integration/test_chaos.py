"""Mixed abuse from many connections at once, with fixed seeds so a failure replays: HTTP/1.1
pipelines of up to 300 requests (some chunked, some h2c upgrades), HTTP/2 connections with up to
60 streams (some reset), random byte flips, writes cut at random points and split at random
sizes, and random hang-ups (after a partial read, with RST, or half-closed). This is how two
crashes were found (a re-entrant read reaching the protocol sniffer, an h2c upgrade the HTTP/1
parser did not see); each also has its own test. Load goes to 127.0.0.1 only, bounded in time."""

from __future__ import annotations

import random
import socket
import threading
import time

import h2.config
import h2.connection
import httpx
import pytest

from conftest import PACKAGE_ROOT

BODY = b'{"features": [12, 70.5, 3, 1, 0, 845.2, 2, 0]}'
JSON_BODY = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,8],"data":[1,2,3,4,5,6,7,8]}]}'
HTTP1_REQUESTS = [
    b"GET /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /predict/churn HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY,
    b"POST /v2/models/churn/infer HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(JSON_BODY) + JSON_BODY,
    b"POST /v2/models/churn/infer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /v2/models/churn HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
]


def http2_bytes(rnd: random.Random) -> bytes:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    for _ in range(rnd.randint(1, 60)):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":path", "/predict/churn"), (":scheme", "http"), (":authority", "a"),
                                   ("content-length", str(len(BODY)))])
        conn.send_data(stream, BODY, end_stream=True)
        if rnd.random() < 0.2:
            conn.reset_stream(stream)
    return conn.data_to_send()


def one_connection(port: int, rnd: random.Random) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(1)
    try:
        data = b"".join(rnd.choice(HTTP1_REQUESTS) for _ in range(rnd.randint(1, 300))) if rnd.random() < 0.5 else http2_bytes(rnd)
        if rnd.random() < 0.25:
            flipped = bytearray(data)
            for _ in range(rnd.randint(1, 8)):
                flipped[rnd.randrange(len(flipped))] = rnd.randrange(256)
            data = bytes(flipped)
        end = rnd.randint(1, len(data)) if rnd.random() < 0.3 else len(data)
        position = 0
        while position < end:
            size = rnd.randint(1, end - position)
            sock.sendall(data[position:position + size])
            position += size
        ending = rnd.random()
        if ending < 0.4:
            sock.recv(rnd.randint(1, 5000))
        elif ending < 0.6:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close with RST
        elif ending < 0.7:
            sock.shutdown(socket.SHUT_WR)
            sock.recv(100_000)
    except OSError:
        pass  # the server may close on us: that is allowed, dying is not
    finally:
        sock.close()


@pytest.mark.parametrize("seed", [14, 21, 22])
def test_mixed_abuse_from_8_connections_at_once_leaves_the_server_serving_with_nothing_left_open(start_server, seed):
    server = start_server("--threads", "2", repo=PACKAGE_ROOT / "examples/models")
    end = time.monotonic() + 8

    def worker(index: int) -> None:
        rnd = random.Random(seed * 100 + index)
        while time.monotonic() < end and server.proc.poll() is None:
            one_connection(server.port, rnd)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.proc.poll() is None, "the server exited"
    answer = httpx.post(f"{server.url}/predict/churn", content=BODY, timeout=10)
    assert answer.status_code == 200 and answer.json()["prediction"] in (0, 1)
    # Every connection, stream and queued request is accounted for once the clients are gone.
    deadline = time.monotonic() + 10
    while True:
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
                  if line.startswith(("apus_connections_open ", "apus_http2_streams_open ", "apus_inflight_requests{"))}
        if values.get("apus_connections_open") == 1 and all(v == 0 for k, v in values.items() if k != "apus_connections_open"):
            break
        assert time.monotonic() < deadline, values
        time.sleep(0.1)
