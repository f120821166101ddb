#!/usr/bin/env python3
"""Request latency as the wire saw it, from a loopback capture (tcpdump -i lo
--time-stamp-precision=nano -w FILE): per HTTP/2 stream, from the packet that carried the
request's HEADERS to the packet that carried the answer's END_STREAM. Neither load generator's
own event loop is in this number, so it tells how much each tool adds to the server's latency.

    scripts/wire-latency.py CAPTURE SERVER_PORT [--skip-seconds S] [--json]
"""
import argparse
import json
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ETHERNET, LINUX_SLL = 1, 113


def packets(data):
    if len(data) < 24 or struct.unpack("<I", data[:4])[0] != 0xA1B23C4D:
        raise SystemExit("not a nanosecond-precision pcap file (use tcpdump --time-stamp-precision=nano)")
    linktype = struct.unpack("<I", data[20:24])[0]
    link_header = {ETHERNET: 14, LINUX_SLL: 16}.get(linktype)
    if link_header is None:
        raise SystemExit(f"unsupported link type {linktype}")
    off = 24
    while off + 16 <= len(data):
        sec, nsec, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        off += 16
        ip = data[off + link_header:off + incl]
        off += incl
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        sport, dport = struct.unpack(">HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:struct.unpack(">H", ip[2:4])[0] - ihl]
        if payload:
            yield sec * 1_000_000_000 + nsec, sport, dport, payload


def latencies(data, port, skip_ns):
    pending = {}  # (direction, client port) -> bytes not yet a whole frame
    sent = {}     # (client port, stream id) -> time of the request's HEADERS
    started = set()
    out, first = [], None
    for t, sport, dport, payload in packets(data):
        first = t if first is None else first
        to_server = dport == port
        client = sport if to_server else dport
        key = (to_server, client)
        buf = pending.get(key, b"") + payload
        if to_server and key not in started:
            # A client's first bytes are the connection preface, then frames.
            if len(buf) < len(PREFACE):
                pending[key] = buf
                continue
            started.add(key)
            if buf.startswith(PREFACE):
                buf = buf[len(PREFACE):]
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + length:]
            if to_server and kind == 1:
                sent[(client, stream)] = t
            elif not to_server and kind in (0, 1) and flags & 1:
                start = sent.pop((client, stream), None)
                if start is not None and start - first >= skip_ns:
                    out.append((t - start) / 1000)
        pending[key] = buf
    return sorted(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture")
    parser.add_argument("port", type=int)
    parser.add_argument("--skip-seconds", type=float, default=0, help="ignore requests sent this early in the capture (warm-up)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lat = latencies(open(args.capture, "rb").read(), args.port, args.skip_seconds * 1e9)
    if not lat:
        raise SystemExit("no complete request/answer pairs in the capture")
    summary = {"count": len(lat), "mean_us": sum(lat) / len(lat)}
    for p in (50, 90, 99):
        summary[f"p{p}_us"] = lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    if args.json:
        json.dump(summary, sys.stdout)
        print()
    else:
        print(" ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
