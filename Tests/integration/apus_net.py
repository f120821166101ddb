"""Socket helpers shared by the integration tests (all bounded in time)."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago.

    Every socket stays bound until all are chosen: the kernel may hand the same ephemeral port
    to consecutive binds once the first socket is closed (a CI run drew one port twice).
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until_refused(port: int, timeout: float) -> bool:
    """Poll new TCP connections to `port` until one is refused (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _tcp_queues(local_port: int, remote_port: int) -> tuple[int, int] | None:
    """(tx_queue, rx_queue) of the IPv4 socket 127.0.0.1:local_port -> 127.0.0.1:remote_port."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
                tx, rx = queues.split(":")
                return int(tx, 16), int(rx, 16)
    return None


def wait_until_server_read_everything(sock: socket.socket, timeout: float = 5.0) -> None:
    """Poll (bounded) until every byte sent on `sock` was acknowledged by the server's kernel and
    read by the server process (its receive queue is empty). The server handles what it reads in
    the same event-loop turn, so anything it does later (e.g. a drain) sees those bytes."""
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    deadline = time.monotonic() + timeout
    while True:
        client = _tcp_queues(client_port, server_port)
        server = _tcp_queues(server_port, client_port)
        if client is not None and server is not None and client[0] == 0 and server[1] == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"server did not read everything within {timeout}s: client {client}, server {server}")
        time.sleep(0.005)
