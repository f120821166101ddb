#!/usr/bin/env python3
"""A minimal Apus client written from proto-spec/PROTOCOL.md alone: protobuf over h2c (prior
knowledge, with the `h2` package) or KServe JSON over HTTP/1.1 (`httpx`).

    python3 examples/python/apus_client.py --port 8080 --model churn --features 12,70.5,3,1,0,845.2,2,0

The protobuf classes are generated at import time with Debian's protoc into a temporary folder.
"""
import argparse, importlib, json, os, socket, struct, subprocess, sys, tempfile

import h2.config
import h2.connection
import h2.events

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto-spec")


def load_pb():
    out = tempfile.mkdtemp(prefix="apus-pb-")
    subprocess.run(["protoc", "-I", SPEC, f"--python_out={out}", os.path.join(SPEC, "apus/v1/inference.proto")], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("apus.v1.inference_pb2")


pb = load_pb()
SIZES = {pb.BOOL: ("B", 1), pb.INT32: ("i", 4), pb.INT64: ("q", 8), pb.FP32: ("f", 4), pb.FP64: ("d", 8)}


def decode_tensor(t):
    fmt, size = SIZES[t.datatype]
    count = len(t.raw_contents) // size
    return list(struct.unpack("<" + fmt * count, t.raw_contents))


class ApusClient:
    """One h2c connection; requests are sent one at a time (enough for a CLI or a test)."""

    def __init__(self, host="127.0.0.1", port=8080, timeout=10):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def _request(self, method, path, body=b"", headers=()):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", f"{self.host}:{self.port}"), (":path", path), *headers]
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status, rheaders, data = None, {}, bytearray()
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            for event in self.conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
                    rheaders = dict(event.headers)
                    status = int(rheaders[":status"])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
                    data += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                    raise ConnectionError(f"stream reset: {event.error_code}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                    self.sock.sendall(self.conn.data_to_send())
                    return status, rheaders, bytes(data)
            self.sock.sendall(self.conn.data_to_send())

    def infer(self, model, rows, input_name="input", version=None, label=None, routing_key=None, request_id=None):
        """rows: a list of equal-length lists of floats. Returns a dict: model, version, variant,
        id, outputs {name: (shape, values)}, class_labels. Raises RuntimeError(code, message) on errors."""
        req = pb.InferRequest(routing_key=routing_key or "", id=request_id or "")
        flat = [float(v) for row in rows for v in row]
        req.inputs.add(name=input_name, datatype=pb.FP32, shape=[len(rows), len(rows[0])], raw_contents=struct.pack("<%df" % len(flat), *flat))
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else f"/labels/{label}" if label else "") + "/infer"
        headers = [("content-type", "application/x-protobuf"), ("accept", "application/x-protobuf")]
        if routing_key:
            headers.append(("apus-routing-key", routing_key))
        status, rheaders, body = self._request("POST", path, req.SerializeToString(), headers)
        if status != 200:
            err = pb.Error.FromString(body)
            raise RuntimeError(status, err.code, err.message)
        resp = pb.InferResponse.FromString(body)
        return {"model": resp.model, "version": resp.version, "variant": resp.variant, "id": resp.id,
                "outputs": {o.name: (list(o.shape), decode_tensor(o)) for o in resp.outputs}, "class_labels": list(resp.class_labels),
                "request_id_header": rheaders.get("x-request-id")}

    def infer_json_http1(self, model, rows, input_name="input"):
        import httpx
        body = {"inputs": [{"name": input_name, "shape": [len(rows), len(rows[0])], "datatype": "FP32", "data": [v for r in rows for v in r]}]}
        r = httpx.post(f"http://{self.host}:{self.port}/v2/models/{model}/infer", json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", required=True)
    ap.add_argument("--features", required=True, help="comma-separated; ';' separates rows")
    ap.add_argument("--routing-key")
    args = ap.parse_args()
    rows = [[float(x) for x in row.split(",")] for row in args.features.split(";")]
    client = ApusClient(args.host, args.port)
    print(json.dumps(client.infer(args.model, rows, routing_key=args.routing_key), indent=1))
    client.close()


if __name__ == "__main__":
    main()
