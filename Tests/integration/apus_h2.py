"""HTTP/2 clients for the integration tests.

`RawH2` writes frames byte-exactly (hyperframe for parsing, hand-built frames for sending, so
malformed and abusive frames are possible) and never does anything on its own: no automatic
SETTINGS ACK, no WINDOW_UPDATE. `H2Client` is a well-behaved client built on the `h2` library,
used as the bystander connection that must keep being served while another connection misbehaves.

Every read has a deadline; nothing here loops without a bound.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
# Flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
# Error codes (RFC 9113 section 7)
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB
# SETTINGS identifiers
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


class ConnectionClosed(Exception):
    """The server closed the connection before what we waited for arrived."""


def raw_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame, byte-exact (the length field always equals len(payload))."""
    return struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags]) + struct.pack(">I", stream_id & 0x7FFFFFFF) + payload


def settings_frame(settings: dict[int, int] | None = None, ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return raw_frame(SETTINGS, ACK if ack else 0, 0, payload)


def ping_frame(opaque: bytes = b"\0" * 8) -> bytes:
    return raw_frame(PING, 0, 0, opaque)


def priority_frame(stream_id: int, depends_on: int = 0, weight: int = 15) -> bytes:
    return raw_frame(PRIORITY, 0, stream_id, struct.pack(">IB", depends_on, weight))


def data_frame(stream_id: int, data: bytes, end_stream: bool = False) -> bytes:
    return raw_frame(DATA, END_STREAM if end_stream else 0, stream_id, data)


def request_headers(method: str, path: str, extra=()) -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path), *extra]


@dataclass
class H2Response:
    stream_id: int
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reset_code: int | None = None
    complete: bool = False


class RawH2:
    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.received: list[Frame] = []
        self.server_settings: dict[int, int] | None = None
        self._header_block: tuple[int, bytearray] | None = None
        self._headers_end_stream = False
        self._responses: dict[int, H2Response] = {}

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def encode(self, headers) -> bytes:
        return self.encoder.encode(headers)

    def headers_frame(self, stream_id: int, headers, end_stream: bool = True, end_headers: bool = True) -> bytes:
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return raw_frame(HEADERS, flags, stream_id, self.encode(headers))

    def request_frame(self, stream_id: int, method: str, path: str, extra=(), end_stream: bool = True) -> bytes:
        return self.headers_frame(stream_id, request_headers(method, path, extra), end_stream=end_stream)

    def handshake(self, settings: dict[int, int] | None = None, timeout: float = 5.0) -> dict[int, int]:
        """Preface + SETTINGS, wait for the server's SETTINGS and ACK it. Returns the server's settings."""
        self.send(PREFACE + settings_frame(settings))
        frame = self.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags, timeout)
        if frame is None:
            raise ConnectionClosed("closed before the server's SETTINGS")
        self.send(settings_frame(ack=True))
        return self.server_settings or {}

    # -- receiving -------------------------------------------------------------------------

    def _fill(self, deadline: float) -> bool:
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

    def next_frame(self, deadline: float) -> Frame | None:
        """The next frame, or None once the server closed. Raises TimeoutError at the deadline."""
        while len(self.buf) < 9:
            if not self._fill(deadline):
                return None
        frame, length = Frame.parse_frame_header(memoryview(bytes(self.buf[:9])))
        while len(self.buf) < 9 + length:
            if not self._fill(deadline):
                return None
        body = bytes(self.buf[9:9 + length])
        del self.buf[:9 + length]
        frame.parse_body(memoryview(body))
        self.received.append(frame)
        self._observe(frame)
        return frame

    def _observe(self, frame: Frame) -> None:
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            self.server_settings = dict(frame.settings)
        if isinstance(frame, (HeadersFrame, ContinuationFrame)):
            if isinstance(frame, HeadersFrame):
                self._header_block = (frame.stream_id, bytearray(frame.data))
                self._headers_end_stream = "END_STREAM" in frame.flags
            else:
                assert self._header_block is not None and self._header_block[0] == frame.stream_id
                self._header_block[1].extend(frame.data)
            if "END_HEADERS" in frame.flags:
                stream_id, block = self._header_block
                self._header_block = None
                decoded = [(n if isinstance(n, str) else n.decode(), v if isinstance(v, str) else v.decode())
                           for n, v in self.decoder.decode(bytes(block))]
                frame.decoded_headers = decoded
                response = self._responses.setdefault(stream_id, H2Response(stream_id))
                if response.status is None:
                    response.headers = decoded
                    response.status = int(dict(decoded).get(":status", "0"))
                if self._headers_end_stream:
                    response.complete = True
        elif isinstance(frame, DataFrame) and frame.stream_id:
            response = self._responses.setdefault(frame.stream_id, H2Response(frame.stream_id))
            response.body += frame.data
            if "END_STREAM" in frame.flags:
                response.complete = True
        elif isinstance(frame, RstStreamFrame):
            response = self._responses.setdefault(frame.stream_id, H2Response(frame.stream_id))
            if not response.complete:
                response.reset_code = frame.error_code

    def read_until(self, predicate, timeout: float):
        """Read frames until `predicate(frame)`; returns that frame, or None if the server closed
        first. Raises TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(deadline)
            if frame is None or predicate(frame):
                return frame

    def response(self, stream_id: int, timeout: float = 5.0) -> H2Response:
        """Read until stream `stream_id` is answered in full or reset."""
        def done(_frame) -> bool:
            r = self._responses.get(stream_id)
            return r is not None and (r.complete or r.reset_code is not None)
        if not done(None):
            if self.read_until(done, timeout) is None and not done(None):
                raise ConnectionClosed(f"closed before stream {stream_id} was answered; frames: {self.describe()}")
        return self._responses[stream_id]

    def peek_response(self, stream_id: int) -> H2Response | None:
        return self._responses.get(stream_id)

    def wait_closed(self, timeout: float) -> bool:
        """Read (and record) frames until the server closes; True if it did within `timeout`."""
        try:
            return self.read_until(lambda _f: False, timeout) is None
        except TimeoutError:
            return False

    @property
    def goaways(self) -> list[GoAwayFrame]:
        return [f for f in self.received if isinstance(f, GoAwayFrame)]

    def resets(self, stream_id: int | None = None) -> list[RstStreamFrame]:
        return [f for f in self.received if isinstance(f, RstStreamFrame) and (stream_id is None or f.stream_id == stream_id)]

    def describe(self) -> str:
        out = []
        for f in self.received:
            if isinstance(f, GoAwayFrame):
                out.append(f"GOAWAY(last={f.last_stream_id}, code={f.error_code:#x}, debug={f.additional_data!r})")
            elif isinstance(f, RstStreamFrame):
                out.append(f"RST_STREAM(stream={f.stream_id}, code={f.error_code:#x})")
            else:
                out.append(f"{type(f).__name__}(stream={f.stream_id}, flags={sorted(f.flags)})")
        return ", ".join(out) + (" <EOF>" if self.eof else "")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class H2Client:
    """A well-behaved HTTP/2 (prior knowledge) client on one connection, built on `h2`."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.terminated: h2.events.ConnectionTerminated | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers=(), timeout: float = 5.0):
        """Returns (status, headers, body). Raises ConnectionClosed if the connection is gone."""
        if self.terminated is not None:
            raise ConnectionClosed(f"connection already terminated: {self.terminated}")
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, request_headers(method, path, headers), end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        try:
            self.sock.sendall(self.conn.data_to_send())
        except (BrokenPipeError, ConnectionResetError) as error:
            raise ConnectionClosed(f"send failed: {error!r}") from error
        status, response_headers, response_body = None, [], bytearray()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer on stream {stream_id} within {timeout}s")
            readable, _, _ = select.select([self.sock], [], [], remaining)
            if not readable:
                continue
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError as error:
                raise ConnectionClosed("connection reset by the server") from error
            if not data:
                raise ConnectionClosed("connection closed by the server")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    response_headers = list(event.headers)
                    status = int(dict(response_headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if event.stream_id == stream_id:
                        response_body += event.data
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                    raise ConnectionClosed(f"stream {stream_id} reset with {event.error_code!r}")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = event
                    raise ConnectionClosed(f"GOAWAY received: {event}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    self.sock.sendall(self.conn.data_to_send())
                    return status, response_headers, bytes(response_body)
            pending = self.conn.data_to_send()
            if pending:
                self.sock.sendall(pending)

    def get(self, path: str, timeout: float = 5.0):
        return self.request("GET", path, timeout=timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
