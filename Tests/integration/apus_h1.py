"""A small raw HTTP/1.1 client over one socket: exact control over bytes and connection reuse.

Every read has a deadline; nothing here loops without a bound.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field


class ConnectionClosed(Exception):
    """The server closed the connection before a complete response arrived."""


@dataclass
class H1Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None


def request_bytes(method: str, path: str, headers=(), body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    names = {name.lower() for name, _ in headers}
    for name, value in headers:
        lines.append(f"{name}: {value}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class H1Conn:
    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local_port = self.sock.getsockname()[1]
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, tolerating a connection the server already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
        """Read once, waiting at most until `deadline`. False at EOF; raises TimeoutError."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data before the deadline")
        readable, _, _ = select.select([self.sock], [], [], remaining)
        if not readable:
            raise TimeoutError("no data before the deadline")
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, timeout: float = 5.0) -> H1Response:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionClosed(f"closed before a response head; got {bytes(self.buf)!r}")
        head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
        head_len = len(head) + 4
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), f"not an HTTP/1 status line: {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = 0
        for name, value in headers:
            if name == "content-length":
                length = int(value)
            if name == "transfer-encoding":
                raise AssertionError("server answered with transfer-encoding; this client expects content-length")
        while len(self.buf) < head_len + length:
            if not self._fill(deadline):
                raise ConnectionClosed("closed in the middle of a response body")
        body = bytes(self.buf[head_len:head_len + length])
        del self.buf[:head_len + length]
        return H1Response(int(status), reason[0] if reason else "", headers, body)

    def request(self, method: str, path: str, headers=(), body: bytes = b"", timeout: float = 5.0) -> H1Response:
        self.send(request_bytes(method, path, headers, body))
        return self.read_response(timeout)

    def get(self, path: str, timeout: float = 5.0) -> H1Response:
        return self.request("GET", path, timeout=timeout)

    def wait_closed(self, timeout: float) -> bool:
        """True once the server closed the connection (EOF or reset) within `timeout`.
        Bytes that arrive meanwhile stay in `buf`."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True

    def is_open(self) -> bool:
        """Non-blocking check that the server has not closed the connection (data is kept)."""
        try:
            return not self.wait_closed(0.001)
        except TimeoutError:
            return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
