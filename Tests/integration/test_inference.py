"""The serving path end to end: a real `apus serve` on a repository built with `apus bundle
create` from the conformance models, real clients (curl, httpx, h2, apus-loadtest, h2load),
answers checked against onnxruntime's recorded outputs."""

from __future__ import annotations

import gzip
import re
import json
import os
import shutil
import signal
import socket
import sys
import subprocess
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest

from apus_h2 import H2Client
from apus_net import free_port
from conftest import ApusServer, PACKAGE_ROOT, apus_binary, bundle, json_lines

ZOO = PACKAGE_ROOT / "Tests/ApusRuntimeTests/Fixtures/zoo"


def loadtest_binary() -> Path:
    return apus_binary().parent / "apus-loadtest"




@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    bundle(repo, "churn", 1, "rf_binary")
    bundle(repo, "churn", 2, "xgb_binary")
    (repo / "churn" / "model.json").write_text(json.dumps({
        "version_policy": "all", "labels": {"stable": 1, "canary": 2},
        "split": {"salt": "churn-2026", "variants": [{"name": "stable", "label": "stable", "weight": 9000},
                                                     {"name": "canary", "label": "canary", "weight": 1000}]}}))
    bundle(repo, "mlp", 1, "mlp_3class")
    bundle(repo, "housing", 1, "gbr_regression")
    bundle(repo, "logreg", 1, "logreg_binary")
    return repo


@pytest.fixture(scope="module")
def server(repo):
    server = ApusServer(apus_binary(), repo, ["--drift-interval", "1"]).start()
    yield server
    server.kill()


def infer_json(url: str, model: str, rows: np.ndarray, suffix: str = "", headers=None, **kw) -> httpx.Response:
    body = {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": [None if np.isnan(v) else float(v) for v in rows.reshape(-1)]}]}
    return httpx.post(f"{url}/v2/models/{model}{suffix}/infer", json=body, headers=headers or {}, timeout=10, **kw)


def test_json_infer_matches_onnxruntime_for_every_row_including_nan_rows(server):
    # JSON has no NaN: missing values travel as null and are fed as NaN (the zoo has NaN rows).
    for model, zoo, version in (("churn", "rf_binary", 1), ("mlp", "mlp_3class", 1), ("logreg", "logreg_binary", 1)):
        inputs = np.load(ZOO / zoo / "inputs.npy").astype(np.float32)
        expected_p = np.load(ZOO / zoo / "expected_probabilities.npy")
        expected_l = np.load(ZOO / zoo / "expected_label.npy")
        r = infer_json(server.url, model, inputs, suffix=f"/versions/{version}")
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}
        assert r.headers["apus-model-version"] == str(version)
        np.testing.assert_array_equal(np.array(out["label"]["data"]), expected_l.reshape(-1))
        np.testing.assert_allclose(np.array(out["probabilities"]["data"]).reshape(expected_p.shape), expected_p, rtol=1e-5, atol=1e-6)


def test_regression_model_answers_its_variable(server):
    inputs = np.load(ZOO / "gbr_regression" / "inputs.npy").astype(np.float32)
    expected = np.load(ZOO / "gbr_regression" / "expected_variable.npy")
    r = infer_json(server.url, "housing", inputs)
    assert r.status_code == 200, r.text
    got = np.array(r.json()["outputs"][0]["data"]).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_infer_works_over_http2_prior_knowledge_with_curl_and_h2(server):
    rows = np.full((1, 20), 0.25, np.float32)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]})
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-H", "content-type: application/json", "-H", "x-request-id: abc-123",
                          "-D", "-", "--data", body, f"{server.url}/v2/models/logreg/infer"], capture_output=True, text=True, timeout=10)
    assert "HTTP/2 200" in out.stdout and "x-request-id: abc-123" in out.stdout and "apus-model-version: 1" in out.stdout, out.stdout
    client = H2Client(server.port)
    status, headers, payload = client.request("POST", "/v2/models/logreg/infer", body=body.encode(), headers=[("content-type", "application/json")])
    assert status == 200 and json.loads(payload)["model_name"] == "logreg"


def test_request_ids_are_sent_never_indexed_and_repeating_headers_are_indexed(server):
    """HPACK: a request id never repeats, so it goes out as a literal never indexed (adding each to
    the dynamic table would only evict entries that do repeat); the other answer headers are
    indexed, so from the second answer on they cost a byte or two."""
    from hpack import NeverIndexedHeaderTuple
    rows = np.full((1, 20), 0.25, np.float32)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]})
    client = H2Client(server.port)
    for i in range(3):
        status, headers, _ = client.request("POST", "/v2/models/logreg/infer", body=body.encode(),
                                            headers=[("content-type", "application/json"), ("x-request-id", f"hpack-{i}")])
        assert status == 200
        kinds = {h[0]: isinstance(h, NeverIndexedHeaderTuple) for h in headers}
        assert kinds["x-request-id"] is True, headers
        assert kinds["apus-model-version"] is False and kinds["content-type"] is False, headers
        assert dict(headers)["x-request-id"] == f"hpack-{i}"
    client.close()


def test_binary_data_extension_round_trips(server):
    rows = np.load(ZOO / "mlp_3class" / "inputs.npy").astype(np.float32)
    header = json.dumps({"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
    r = httpx.post(f"{server.url}/v2/models/mlp/infer", content=header + rows.tobytes(),
                   headers={"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"}, timeout=10)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    probs = np.frombuffer(r.content[n:], np.float32).reshape(meta["outputs"][0]["shape"])
    np.testing.assert_allclose(probs, np.load(ZOO / "mlp_3class" / "expected_probabilities.npy"), rtol=1e-5, atol=1e-6)


def test_protobuf_infer_with_pythons_generated_code(server, pb):
    rows = np.load(ZOO / "rf_binary" / "inputs.npy").astype(np.float32)
    req = pb.InferRequest(id="pb-1")
    t = req.inputs.add(name="input", datatype=pb.FP32, shape=list(rows.shape), raw_contents=rows.tobytes())
    r = httpx.post(f"{server.url}/v2/models/churn/versions/1/infer", content=req.SerializeToString(),
                   headers={"content-type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = pb.InferResponse.FromString(r.content)
    assert (resp.model, resp.version, resp.id) == ("churn", "1", "pb-1")
    probs = {o.name: o for o in resp.outputs}["probabilities"]
    got = np.frombuffer(probs.raw_contents, np.float32).reshape(list(probs.shape))
    np.testing.assert_allclose(got, np.load(ZOO / "rf_binary" / "expected_probabilities.npy"), rtol=1e-5, atol=1e-6)
    # Wrong size: 400 naming the tensor, as an apus.v1.Error.
    t.raw_contents = b"\0" * 10
    r = httpx.post(f"{server.url}/v2/models/churn/infer", content=req.SerializeToString(), headers={"content-type": "application/x-protobuf"}, timeout=10)
    err = pb.Error.FromString(r.content)
    assert r.status_code == 400 and err.code == "bad_request" and "input input" in err.message
    # Truncated body.
    r = httpx.post(f"{server.url}/v2/models/churn/infer", content=req.SerializeToString()[:-3], headers={"content-type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 400
    # Shapes whose product overflows or hides behind a 0: 400 naming the tensor, and the server goes on.
    for shape in ([1 << 30, 1 << 30], [0, (1 << 31) - 1, (1 << 31) - 1]):
        del t.shape[:]
        t.shape.extend(shape)
        t.raw_contents = b""
        r = httpx.post(f"{server.url}/v2/models/churn/infer", content=req.SerializeToString(), headers={"content-type": "application/x-protobuf"}, timeout=10)
        assert r.status_code == 400 and "input input: shape" in pb.Error.FromString(r.content).message, shape
    assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200


def test_concurrent_single_row_protobuf_requests_each_get_their_own_rows_answer(server, pb):
    # 64 rows sent at once as 64 streams on one HTTP/2 connection: they are batched together,
    # and every answer after a batch's first is written from the batch's template. Each must
    # still carry its own id and its own row's outputs.
    import asyncio
    rows = np.load(ZOO / "rf_binary" / "inputs.npy").astype(np.float32)
    expected_p = np.load(ZOO / "rf_binary" / "expected_probabilities.npy")
    expected_l = np.load(ZOO / "rf_binary" / "expected_label.npy")

    async def one(client, i):
        req = pb.InferRequest(id=f"row-{i}")
        req.inputs.add(name="input", datatype=pb.FP32, shape=[1, rows.shape[1]], raw_contents=rows[i:i + 1].tobytes())
        r = await client.post(f"{server.url}/v2/models/churn/versions/1/infer", content=req.SerializeToString(),
                              headers={"content-type": "application/x-protobuf"})
        assert r.status_code == 200, r.content
        return i, pb.InferResponse.FromString(r.content)

    async def all_rows():
        async with httpx.AsyncClient(http1=False, http2=True, timeout=20) as client:
            return await asyncio.gather(*(one(client, i) for i in range(len(rows))))

    for _ in range(3):
        for i, resp in asyncio.run(all_rows()):
            assert resp.id == f"row-{i}" and (resp.model, resp.version) == ("churn", "1")
            out = {o.name: o for o in resp.outputs}
            assert list(out["probabilities"].shape) == [1, 2] and list(out["label"].shape) == [1]
            np.testing.assert_allclose(np.frombuffer(out["probabilities"].raw_contents, np.float32), expected_p[i], rtol=1e-5, atol=1e-6)
            assert np.frombuffer(out["label"].raw_contents, np.int64)[0] == expected_l[i]


def test_predict_convenience_route_answers_prediction_and_confidence(server):
    row = np.load(ZOO / "rf_binary" / "inputs.npy")[0].astype(np.float32)
    expected = np.load(ZOO / "rf_binary" / "expected_probabilities.npy")[0]
    r = httpx.post(f"{server.url}/predict/churn", json={"features": [None if np.isnan(v) else float(v) for v in row]},
                   headers={"apus-routing-key": "user-1"}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"prediction", "confidence", "model", "version"}
    if body["version"] == "1":
        assert body["prediction"] == int(np.argmax(expected))
        assert abs(body["confidence"] - float(expected.max())) < 1e-5
    r = httpx.post(f"{server.url}/predict/churn", json={"features": [[0.1] * 20, [0.2] * 20]}, timeout=10)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    r = httpx.post(f"{server.url}/predict/churn", json={"features": ["x"] * 20}, timeout=10)
    assert r.status_code == 400 and "features[0]" in r.json()["error"]
    # A row of the wrong width is refused in the route's terms: how many features the model takes.
    r = httpx.post(f"{server.url}/predict/churn", json={"features": [0.1] * 3}, timeout=10)
    assert r.status_code == 400 and r.json()["error"].startswith("features: model churn takes 20 features per row") \
        and r.json()["error"].endswith("got 3"), r.text


def test_metadata_readiness_versions_and_labels(server):
    meta = httpx.get(f"{server.url}/v2/models/churn", timeout=10).json()
    assert meta["versions"] == ["1", "2"] and meta["inputs"][0]["name"] == "input" and meta["platform"] == "onnx"
    assert httpx.get(f"{server.url}/v2/models/churn/versions/1/ready", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/v2/models/churn/versions/7/ready", timeout=10).status_code == 503
    r = infer_json(server.url, "churn", np.full((1, 20), 0.5, np.float32), suffix="/labels/canary")
    assert r.status_code == 200 and r.headers["apus-model-version"] == "2"
    assert infer_json(server.url, "churn", np.full((1, 20), 0.5, np.float32), suffix="/labels/nope").status_code == 404
    index = httpx.post(f"{server.url}/v2/repository/index", timeout=10).json()
    assert {(e["name"], e["version"], e["state"]) for e in index} >= {("churn", "1", "READY"), ("churn", "2", "READY")}


@pytest.mark.parametrize("case, kwargs, status, needle", [
    ("unknown model", dict(url_model="nope"), 404, "nope"),
    ("wrong shape", dict(body={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}), 400, "input input"),
    ("shape/data mismatch", dict(body={"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": [1, 2]}]}), 400, "input"),
    ("unknown input", dict(body={"inputs": [{"name": "x", "shape": [1, 20], "datatype": "FP32", "data": [0] * 20}]}), 400, "x"),
    ("unknown output", dict(body={"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": [0] * 20}], "outputs": [{"name": "nope"}]}), 400, "nope"),
    ("NaN literal", dict(raw=b'{"inputs":[{"name":"input","shape":[1,1],"datatype":"FP32","data":[NaN]}]}'), 400, "NaN"),
    ("Infinity literal", dict(raw=b'{"inputs":[{"name":"input","shape":[1,1],"datatype":"FP32","data":[Infinity]}]}'), 400, "Infinity"),
    ("100k-deep JSON", dict(raw=b"[" * 100_000), 400, "nesting"),
    ("not JSON", dict(raw=b"\x00\x01garbage"), 400, "JSON"),
    ("bad content type", dict(raw=b"{}", headers={"content-type": "text/csv"}), 415, "text/csv"),
    ("bad datatype", dict(body={"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP17", "data": [0] * 20}]}), 400, "FP17"),
    # The product is 2^64: it wrapped to 0 and passed the 10^8 bound, then trapped and ended the server.
    ("shape wrapping to 0", dict(body={"inputs": [{"name": "input", "shape": [4194304, 2097152, 2097152], "datatype": "FP32", "data": []}]}),
     400, "input input: shape"),
    ("empty shape, rows 10^18 wide", dict(body={"inputs": [{"name": "input", "shape": [0, 999999999, 999999999], "datatype": "FP32", "data": []}]}),
     400, "input input: shape"),
    ("binary_data_size 1e300", dict(raw=b'{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":1e300}}]}\0\0\0\0',
                                    headers={"content-type": "application/octet-stream", "inference-header-content-length": "99"}),
     400, "binary_data_size"),
])
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_keeps_serving(server, case, kwargs, status, needle):
    model = kwargs.get("url_model", "churn")
    url = f"{server.url}/v2/models/{model}/infer"
    headers = kwargs.get("headers", {"content-type": "application/json"})
    if "raw" in kwargs:
        r = httpx.post(url, content=kwargs["raw"], headers=headers, timeout=10)
    else:
        r = httpx.post(url, json=kwargs.get("body", {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": [0] * 20}]}),
                       headers=headers, timeout=10)
    assert r.status_code == status, (case, r.status_code, r.text)
    assert needle in r.json()["error"], (case, r.text)
    assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200


def test_gzip_and_deflate_bodies_are_accepted_and_a_gzip_bomb_gets_413(server):
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": [0.5] * 20}]}).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        r = httpx.post(f"{server.url}/v2/models/logreg/infer", content=data, headers={"content-encoding": encoding, "content-type": "application/json"}, timeout=10)
        assert r.status_code == 200, (encoding, r.text)
    bomb = gzip.compress(b"\0" * (64 << 20))   # 64 MiB of zeros in ~65 KB
    r = httpx.post(f"{server.url}/v2/models/logreg/infer", content=bomb, headers={"content-encoding": "gzip", "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "decompresses" in r.json()["error"]
    r = httpx.post(f"{server.url}/v2/models/logreg/infer", content=gzip.compress(body)[:-8], headers={"content-encoding": "gzip"}, timeout=10)
    assert r.status_code == 400
    # Large answers are compressed when the client accepts it.
    rows = np.zeros((200, 20), np.float32)
    r = infer_json(server.url, "mlp", rows, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip" and len(r.json()["outputs"]) == 2


def test_ab_split_same_key_same_variant_and_keyless_requests_marked_random(server):
    seen = {}
    for key in [f"user-{i}" for i in range(200)]:
        r = infer_json(server.url, "churn", np.full((1, 20), 0.5, np.float32), headers={"apus-routing-key": key})
        assert r.status_code == 200
        assert r.headers["apus-variant-assignment"] == "hash"
        seen[key] = (r.headers["apus-variant"], r.headers["apus-model-version"])
        again = infer_json(server.url, "churn", np.full((1, 20), 0.5, np.float32), headers={"apus-routing-key": key})
        assert (again.headers["apus-variant"], again.headers["apus-model-version"]) == seen[key]
    assert {v for v, _ in seen.values()} == {"stable", "canary"}
    assert all((variant == "stable") == (version == "1") for variant, version in seen.values())
    import mmh3
    for key, (variant, _) in seen.items():
        bucket = mmh3.hash(f"churn-2026:{key}", 0, signed=False) % 10000
        assert variant == ("stable" if bucket < 9000 else "canary"), key
    r = infer_json(server.url, "churn", np.full((1, 20), 0.5, np.float32))
    assert r.headers["apus-variant-assignment"] == "random"


def test_metrics_pass_promtool_and_show_requests_and_drift(server):
    for _ in range(60):
        infer_json(server.url, "mlp", np.random.RandomState(0).rand(1, 20).astype(np.float32) * 5)
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
        if "apus_feature_drift_ks_statistic" in text:
            break
        time.sleep(0.2)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'apus_requests_total{model="mlp",version="1",variant="",code="2xx"}' in text
    assert "apus_feature_drift_ks_statistic{model=\"mlp\"" in text
    assert "process_resident_memory_bytes" in text and "apus_connections_open" in text


def test_a_real_prometheus_scrapes_apus_series(server, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed (scripts/install-deps.sh --test installs it)")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        prom_port = s.getsockname()[1]
    config = tmp_path / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: apus\n    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        result = []
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": "apus_model_loads_total"}, timeout=2)
                result = r.json().get("data", {}).get("result", [])
                if result:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        assert result and float(result[0]["value"][1]) >= 5, result
    finally:
        proc.terminate()
        proc.wait(10)


def test_loadtest_harness_reports_split_and_thresholds(server, tmp_path):
    report = tmp_path / "report.json"
    ok = subprocess.run([str(loadtest_binary()), "--port", str(server.port), "--model", "churn", "--requests", "3000", "--connections", "2",
                         "--streams", "8", "--users", "500", "--json", str(report), "--quiet", "--fail-if", "error_rate>0"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(report.read_text())
    phase = doc["phases"][0]["report"]
    assert phase["failed"] == 0 and phase["requests"] >= 3000
    assert set(phase["variants"]) == {"stable", "canary"} and phase["configured_split"] == {"stable": 0.9, "canary": 0.1}
    failing = subprocess.run([str(loadtest_binary()), "--port", str(server.port), "--model", "churn", "--requests", "200", "--quiet",
                              "--fail-if", "p50<1s"], capture_output=True, text=True, timeout=60)
    assert failing.returncode == 2 and "FAILED thresholds" in failing.stderr


def test_loadtest_refuses_bad_scenarios_and_unreachable_servers_in_plain_words(server, tmp_path):
    scenario = tmp_path / "s.json"
    for text, message in [('{"phases": [{"rate": 100, "duration": 1}]}', "missing field phases[0].name"),
                          ('{"phases": [{"name": "a", "requests": 1.5}]}', "phases[0].requests = 1.5"),
                          ('{"phases": [{"name": "a", "rate": 100}]}', "phase a needs a duration or a request count")]:
        scenario.write_text(text)
        out = subprocess.run([str(loadtest_binary()), "--port", str(server.port), "--model", "churn", "--scenario", str(scenario), "--quiet"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and message in out.stderr, (text, out.stderr)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        closed = listener.getsockname()[1]
    out = subprocess.run([str(loadtest_binary()), "--port", str(closed), "--model", "churn", "--requests", "10", "--quiet"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"cannot connect to 127.0.0.1:{closed}: connection refused" in out.stderr, out.stderr


@pytest.mark.parametrize("bound", [["--duration", "1"], ["--requests", "100"], ["--duration", "1", "--rate", "2000"]])
def test_loadtest_against_a_server_that_stops_answering_ends_with_a_report_instead_of_hanging(tmp_path, bound):
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def accept():
        # Speaks just enough HTTP/2 (an empty SETTINGS) for the client to open streams, then nothing.
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    report = tmp_path / "report.json"
    try:
        started = time.monotonic()
        out = subprocess.run([str(loadtest_binary()), "--port", str(listener.getsockname()[1]), "--path", "/v2/health/live", *bound,
                              "--drain-timeout", "1", "--json", str(report), "--quiet", "--fail-if", "error_rate>0"],
                             capture_output=True, text=True, timeout=60)
        assert time.monotonic() - started < 20
        assert out.returncode == 2 and "FAILED thresholds" in out.stderr, out.stdout + out.stderr
        phase = json.loads(report.read_text())["phases"][0]["report"]
        assert phase["succeeded"] == 0 and phase["failed"] > 0
        assert any("drain time" in message for message in phase["errors"]), phase["errors"]
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_open_loop_latency_includes_a_server_stall(repo, tmp_path):
    server = ApusServer(apus_binary(), repo, []).start()
    try:
        proc = subprocess.Popen([str(loadtest_binary()), "--port", str(server.port), "--model", "logreg", "--rate", "200", "--duration", "3",
                                 "--connections", "1", "--streams", "4", "--json", str(tmp_path / "r.json"), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        server.signal(signal.SIGSTOP)   # the server freezes for 0.8 s
        time.sleep(0.8)
        server.signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        latency = json.loads((tmp_path / "r.json").read_text())["phases"][0]["report"]["latency"]
        # Requests meant to go during the stall waited for it: the max is close to the stall, and
        # the tail (>= 5% of requests were scheduled in it) shows it, not just one sample.
        assert latency["max_us"] >= 600_000, latency
        assert latency["p99_us"] >= 300_000, latency
    finally:
        server.kill()


def test_hot_swaps_under_load_lose_no_request_and_never_serve_a_bad_version(tmp_path):
    repo = tmp_path / "repo"
    bundle(repo, "logreg", 1, "logreg_binary")
    # Two versions serve; the load goes through the "stable" label, moved to each new version.
    (repo / "logreg" / "model.json").write_text(json.dumps({"version_policy": {"latest": 2}, "labels": {"stable": 1}}))
    server = ApusServer(apus_binary(), repo, []).start()
    report = tmp_path / "swap.json"
    try:
        load = subprocess.Popen([str(loadtest_binary()), "--port", str(server.port), "--model", "logreg", "--version", "stable", "--duration", "12",
                                 "--connections", "2", "--streams", "4", "--json", str(report), "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        good = {"1"}
        template = repo / "logreg" / "1"
        rss = []
        for version in range(2, 102):
            target = repo / "logreg" / str(version)
            if version == 40:   # corrupt: checksum mismatch
                shutil.copytree(template, target)
                (target / "model.onnx").write_bytes(b"corrupt" + (target / "model.onnx").read_bytes()[7:])
            elif version == 60:  # half-copied: no manifest yet
                target.mkdir()
                shutil.copy(template / "model.onnx", target / "model.onnx")
            else:
                shutil.copytree(template, target)
                manifest = json.loads((target / "manifest.json").read_text())
                manifest["version"] = version
                (target / "manifest.json").write_text(json.dumps(manifest))
                good.add(str(version))
            server.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                index = httpx.post(f"{server.url}/v2/repository/index", timeout=5).json()
                states = {e.get("version"): e["state"] for e in index}
                if states.get(str(version)) in ("READY", "FAILED"):
                    break
                time.sleep(0.01)
            if version in (40, 60):
                assert states.get(str(version)) == "FAILED", (version, states)
            else:
                moved = httpx.put(f"{server.url}/v2/repository/models/logreg/labels/stable", json={"version": version}, timeout=5)
                assert moved.status_code == 200, (moved.text, states, server.log()[-3000:])
            rss.append(int(open(f"/proc/{server.proc.pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
        out, err = load.communicate(timeout=120)
        assert load.returncode == 0, out + err
        phase = json.loads(report.read_text())["phases"][0]["report"]
        assert phase["failed"] == 0, phase
        assert set(phase["versions"]) <= good, (phase["versions"], "a version that failed validation served")
        assert len(phase["versions"]) > 5, phase["versions"]
        # Memory returns to its baseline: the two versions the policy keeps, once the load is over and
        # the old versions are freed (their pages are handed back), against the same two-version
        # state at the start. Freed versions are trimmed asynchronously: poll, bounded.
        baseline = rss[1]
        deadline = time.monotonic() + 5
        while True:
            final = int(open(f"/proc/{server.proc.pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            if final - baseline < 16 << 20 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"RSS with 2 versions at the start {baseline >> 20} MiB, peak {max(rss) >> 20} MiB, "
              f"after 100 swaps and the load {final >> 20} MiB")
        assert final - baseline < 16 << 20, (baseline, final, rss)
    finally:
        server.kill()


def test_sigterm_under_inference_load_fails_no_request(repo, tmp_path):
    server = ApusServer(apus_binary(), repo, ["--drain-timeout", "10"]).start()
    report = tmp_path / "drain.json"
    load = subprocess.Popen([str(loadtest_binary()), "--port", str(server.port), "--model", "mlp", "--requests", "4000",
                             "--connections", "2", "--streams", "4", "--json", str(report), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    server.terminate()
    assert server.wait_exit(15) == 0
    out, err = load.communicate(timeout=60)
    phase = json.loads(report.read_text())["phases"][0]["report"] if report.exists() else None
    assert phase is not None, out + err
    # Every request that was sent got an answer; requests not sent after GOAWAY are refused
    # client-side (counted as errors by the harness), never a reset of an accepted one.
    assert not any("reset" in message for message in phase["errors"]), phase["errors"]
    assert phase["statuses"] and set(phase["statuses"]) == {"200"}, phase


def test_feedback_is_joined_to_the_served_prediction_and_counted_per_variant(server):
    rows = np.load(ZOO / "rf_binary" / "inputs.npy")[:1].astype(np.float32)
    r = infer_json(server.url, "churn", np.nan_to_num(rows), headers={"apus-routing-key": "fb-user", "x-request-id": "fb-1"})
    assert r.status_code == 200
    variant = r.headers["apus-variant"]
    label = r.json()["outputs"][0]["data"][0]
    fb = httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": "fb-1", "value": label}, timeout=10)
    assert fb.status_code == 200 and fb.json()["correct"] is True and fb.json()["variant"] == variant, fb.text
    again = httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": "fb-1", "value": label}, timeout=10)
    assert again.status_code == 404 and "fb-1" in again.json()["error"]
    bad = httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": "fb-2"}, timeout=10)
    assert bad.status_code == 400 and "value" in bad.json()["error"]
    wrong_type = httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": 5, "value": 1}, timeout=10)
    assert wrong_type.status_code == 400 and wrong_type.json()["error"] == '"request_id" must be a string', wrong_type.text
    # Label names are short identifiers, and not only digits (those read as versions).
    for name in ["3", "with%20space", "a" * 65]:
        moved = httpx.put(f"{server.url}/v2/repository/models/churn/labels/{name}", json={"version": 1}, timeout=10)
        assert moved.status_code == 400 and "label name" in moved.json()["error"], (name, moved.text)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'apus_ab_outcomes_correct_total{{model="churn",variant="{variant}"}} 1' in text
    # With an id in the header and another in the body, the answer's x-request-id names the
    # logged prediction; a body-only id names it when no header does.
    body = {"id": "body-id", "inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": np.nan_to_num(rows).reshape(-1).tolist()}]}
    r = httpx.post(f"{server.url}/v2/models/churn/infer", json=body, headers={"x-request-id": "header-id"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "header-id" and r.json()["id"] == "body-id", r.text
    assert httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": "header-id", "value": 1}, timeout=10).status_code == 200
    r = httpx.post(f"{server.url}/v2/models/churn/infer", json={**body, "id": "body-only"}, timeout=10)
    assert r.status_code == 200 and r.headers["x-request-id"] == "body-only", r.text
    assert httpx.post(f"{server.url}/v2/models/churn/feedback", json={"request_id": "body-only", "value": 1}, timeout=10).status_code == 200


def test_canary_progresses_step_by_step_under_load_and_shadow_gets_copies(repo, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    server = ApusServer(apus_binary(), copy, []).start()
    try:
        split = {"salt": "churn-2026", "variants": [{"name": "stable", "label": "stable", "weight": 10000},
                                                    {"name": "canary", "label": "canary", "weight": 0}],
                 "shadow": {"version": 2}}
        r = httpx.put(f"{server.url}/v2/models/churn/split", json=split, timeout=10)
        assert r.status_code == 200, r.text
        policy = {"baseline": "stable", "canary": "canary", "steps": [10, 50, 100], "window_s": 1, "min_requests": 5,
                  "max_p99_ratio": 100, "max_error_rate_increase": 0.05}
        r = httpx.post(f"{server.url}/v2/models/churn/canary", json=policy, timeout=10)
        assert r.status_code == 200 and r.json()["canary_weight"] == 1000, r.text
        load = subprocess.Popen([str(loadtest_binary()), "--port", str(server.port), "--model", "churn", "--rate", "300", "--duration", "8",
                                 "--users", "1000", "--json", str(tmp_path / "canary.json"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        state = {}
        while time.monotonic() < deadline:
            state = httpx.get(f"{server.url}/v2/models/churn/canary", timeout=5).json()
            if state["state"] in ("promoted", "rolled_back"):
                break
            time.sleep(0.2)
        out, err = load.communicate(timeout=60)
        assert state.get("state") == "promoted", state
        assert len(state["history"]) >= 4, state
        final = httpx.get(f"{server.url}/v2/models/churn/split", timeout=5).json()["split"]
        assert {v["name"]: v["weight"] for v in final["variants"]} == {"stable": 0, "canary": 10000}
        report = json.loads((tmp_path / "canary.json").read_text())["phases"][0]["report"]
        assert report["failed"] == 0 and set(report["variants"]) == {"stable", "canary"}, report
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert 'apus_canary_state{model="churn",canary="canary",state="promoted"} 1' in text
        shadow = [l for l in text.splitlines() if l.startswith('apus_shadow_requests_total{model="churn"}')]
        assert shadow and float(shadow[0].split()[-1]) > 0, shadow
        # The persisted split survives a restart.
        saved = json.loads((copy / "churn" / "model.json").read_text())
        assert {v["name"]: v["weight"] for v in saved["split"]["variants"]} == {"stable": 0, "canary": 10000}
    finally:
        server.kill()


def test_expired_deadline_is_answered_504_and_a_bad_timeout_header_400(server):
    rows = np.full((1, 20), 0.5, np.float32)
    r = infer_json(server.url, "logreg", rows, headers={"apus-timeout-ms": "0.000001"})
    assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded", r.text
    r = infer_json(server.url, "logreg", rows, headers={"apus-timeout-ms": "soon"})
    assert r.status_code == 400 and "apus-timeout-ms" in r.json()["error"]
    assert infer_json(server.url, "logreg", rows, headers={"apus-timeout-ms": "5000"}).status_code == 200


def test_triton_style_timeouts_in_microseconds_header_and_body_parameter(server):
    # 500 rows of JSON take far longer than 1 us to decode, so the budget is spent before the
    # request can reach the queue: deterministic, no sleeping.
    rows = np.full((500, 20), 0.5, np.float32)
    r = infer_json(server.url, "logreg", rows, headers={"timeout": "1"})
    assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded", r.text
    body = {"parameters": {"timeout": 1},
            "inputs": [{"name": "input", "shape": [500, 20], "datatype": "FP32", "data": [0.5] * 10000}]}
    r = httpx.post(f"{server.url}/v2/models/logreg/infer", json=body, timeout=10)
    assert r.status_code == 504 and r.json()["code"] == "deadline_exceeded", r.text
    body["parameters"]["timeout"] = -3
    r = httpx.post(f"{server.url}/v2/models/logreg/infer", json=body, timeout=10)
    assert r.status_code == 400 and "parameters.timeout" in r.json()["error"], r.text
    r = infer_json(server.url, "logreg", rows[:1], headers={"timeout": "in a bit"})
    assert r.status_code == 400 and r.json()["error"].startswith("timeout"), r.text
    # 0 is Triton's "no timeout"; a generous budget answers normally.
    assert infer_json(server.url, "logreg", rows[:1], headers={"timeout": "0"}).status_code == 200
    assert infer_json(server.url, "logreg", rows[:1], headers={"timeout": "5000000"}).status_code == 200


def test_a_server_confined_to_one_core_runs_one_loop_and_its_batches_inline(repo, pb):
    # taskset leaves the process one core: one event loop (Foundation's processor count would
    # say every online core), and batches up to 1 ms run on the loop (a hand-off to a worker on
    # the same core buys nothing). Forest batches then still answer every request correctly.
    server = ApusServer(apus_binary(), repo, [], threads=None, prefix=("taskset", "-c", "0")).start()
    try:
        assert server.wait_for_log("serving", 30), server.log()
        log = server.log()
        assert "threads=1 " in log and "usable-cores=1 " in log and "inline-budget-us=1000 " in log, log
        rows = np.load(ZOO / "rf_binary/inputs.npy").astype(np.float32)[:8]
        expected = np.load(ZOO / "rf_binary/expected_probabilities.npy")[:8]
        request = pb.InferRequest()
        request.inputs.add(name="input", datatype=pb.FP32, shape=[1, rows.shape[1]])
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            for i in range(8):
                request.inputs[0].raw_contents = np.ascontiguousarray(rows[i:i + 1]).tobytes()
                r = client.post(f"{server.url}/v2/models/churn/versions/1/infer", content=request.SerializeToString(),
                                headers={"content-type": "application/x-protobuf"})
                assert r.status_code == 200, r.content
                probs = {o.name: o for o in pb.InferResponse.FromString(r.content).outputs}["probabilities"]
                np.testing.assert_allclose(np.frombuffer(probs.raw_contents, np.float32), expected[i], rtol=1e-5, atol=1e-6)
    finally:
        server.kill()


def test_full_queue_answers_429_with_retry_after_and_never_grows(tmp_path):
    repo = tmp_path / "repo"
    bundle(repo, "rf", 1, "rf_binary")
    (repo / "rf" / "model.json").write_text(json.dumps({"batching": {"max_batch_size": 1, "max_queue_rows": 2}}))
    server = ApusServer(apus_binary(), repo, []).start()
    try:
        rows = np.full((64, 20), 0.5, np.float32)
        body = json.dumps({"inputs": [{"name": "input", "shape": [64, 20], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]})
        path = tmp_path / "body.json"
        path.write_text(body)
        out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "32", "-d", str(path), "-H", "content-type: application/json",
                              f"{server.url}/v2/models/rf/infer"], capture_output=True, text=True, timeout=120).stdout
        ok = int(re.search(r"status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx", out).group(1))
        rejected = int(re.search(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx", out).group(1))
        assert ok > 0 and rejected > 0 and ok + rejected == 2000, out
        with httpx.Client(timeout=10) as client:
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                responses = list(pool.map(lambda _: client.post(f"{server.url}/v2/models/rf/infer", content=body,
                                                                 headers={"content-type": "application/json"}), range(64)))
        rejected_responses = [r for r in responses if r.status_code == 429]
        for r in rejected_responses:
            assert r.headers["retry-after"] == "1" and r.json()["code"] == "too_many_requests"
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert 'apus_dropped_requests_total{model="rf",version="1",reason="queue_full"}' in text
    finally:
        server.kill()


def test_python_client_written_from_the_spec_gets_the_same_answer_as_the_swift_client(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("apus_client", PACKAGE_ROOT / "examples/python/apus_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = ApusServer(apus_binary(), PACKAGE_ROOT / "examples/models", []).start()
    try:
        features = "12,70.5,3,1,0,845.2,2,0;40,30,0,0,1,1200,3,0"
        rows = [[float(x) for x in row.split(",")] for row in features.split(";")]
        client = module.ApusClient("127.0.0.1", server.port)
        answer = client.infer("churn", rows, version="1")
        client.close()
        swift = subprocess.run([str(apus_binary()), "predict", "--port", str(server.port), "--model", "churn", "--version", "1",
                                "--features", features], capture_output=True, text=True, timeout=30, check=True).stdout
        line = next(l for l in swift.splitlines() if l.startswith("probabilities"))
        swift_probs = [float(x) for x in line.split(":", 1)[1].split(",")]
        np.testing.assert_allclose(answer["outputs"]["probabilities"][1], swift_probs, rtol=1e-6)
        assert answer["version"] == "1" and answer["class_labels"] == [0, 1]
        http1 = client.infer_json_http1("churn", rows)
        assert http1["model_name"] == "churn"
        # The CLI: an empty field is a missing value; any other text that is not a number is refused, named.
        def predict(features, port=server.port):
            return subprocess.run([str(apus_binary()), "predict", "--port", str(port), "--model", "churn", "--features", features],
                                  capture_output=True, text=True, timeout=30)
        assert predict("12,,3,1,0,845.2,2,0").returncode == 0
        bad = predict("12,70.5,3,1,0,845.2,2,0;40,x,0,0,1,1200,3,0")
        assert bad.returncode != 0 and 'row 2, value 2: "x" is not a number' in bad.stderr, bad.stderr
        closed = free_port()
        refused = predict("12,70.5,3,1,0,845.2,2,0", port=closed)
        assert refused.returncode != 0 and f"cannot connect to 127.0.0.1:{closed}: connection refused" in refused.stderr, refused.stderr
    finally:
        server.kill()


def test_swift_client_example_runs_against_the_example_repository():
    server = ApusServer(apus_binary(), PACKAGE_ROOT / "examples/models", []).start()
    try:
        out = subprocess.run([str(apus_binary().parent / "example-client"), str(server.port)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "churn version" in out.stdout and "P(churn) = 0." in out.stdout, out.stdout + out.stderr
    finally:
        server.kill()


def test_apus_predict_against_a_server_that_never_answers_gives_up_with_a_clear_error():
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted = []
    # Accepts and reads, never answers (not even the HTTP/2 SETTINGS).
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        started = time.monotonic()
        out = subprocess.run([str(apus_binary()), "predict", "--port", str(listener.getsockname()[1]), "--model", "churn",
                              "--features", "1,2,3,4,5,6,7,8", "--timeout-ms", "300"], capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - started
        assert out.returncode != 0 and "no answer within 1300 ms" in out.stderr, out.stderr
        assert 1.2 < elapsed < 10, elapsed
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()


@pytest.mark.parametrize("flag, value, message", [
    ("--threads", "100000", "--threads must be 1...1024"),  # it crashed creating the threads
    ("--max-header-bytes", "0", "--max-header-bytes must be at least 256"),
    ("--max-header-count", "0", "--max-header-count must be at least 8"),
    ("--max-outbound-queue", "0", "--max-outbound-queue must be at least 65536 bytes"),
    ("--drift-interval", "0", "--drift-interval must be a positive number of seconds"),
    ("--max-body-bytes=-1", None, "--max-body-bytes must be 0 or more"),
])
def test_serve_refuses_settings_that_would_crash_or_refuse_every_request_naming_the_flag(flag, value, message):
    out = subprocess.run([str(apus_binary()), "serve", "--port", "0", "--model-repository", str(PACKAGE_ROOT / "examples/models"), flag,
                          *([value] if value is not None else [])], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and message in out.stderr, out.stderr


def test_bundle_create_leaves_nothing_on_failure_and_replaces_a_version_only_with_force(tmp_path):
    onnx = ZOO / "rf_binary" / "model.onnx"
    model = tmp_path / "churn"

    def create(version, *extra):
        return subprocess.run([str(apus_binary()), "bundle", "create", "--onnx", str(onnx), "--out", str(model / version), *extra],
                              capture_output=True, text=True, timeout=60)
    # A failure (20 features for a width the model does not have) leaves no folder, not even a
    # hidden one: it used to leave 1/ holding only model.onnx, reported by a watching server as a failed version.
    failed = create("1", "--features", "a,b")
    assert failed.returncode != 0 and "2 feature names" in failed.stderr, failed.stderr
    assert not model.exists() or list(model.iterdir()) == [], list(model.iterdir())
    missing = subprocess.run([str(apus_binary()), "bundle", "create", "--onnx", str(tmp_path / "nope.onnx"), "--out", str(model / "1")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "nope.onnx: no such file" in missing.stderr, missing.stderr
    assert create("1").returncode == 0
    before = (model / "1" / "manifest.json").read_text()
    again = create("1", "--metrics", "auc=0.9")
    assert again.returncode != 0 and "already exists" in again.stderr and "--force" in again.stderr, again.stderr
    assert (model / "1" / "manifest.json").read_text() == before
    forced = create("1", "--metrics", "auc=0.9", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((model / "1" / "manifest.json").read_text())["training"]["metrics"] == {"auc": 0.9}
    assert sorted(p.name for p in model.iterdir()) == ["1"], "no staging or old folder left behind"


def test_python_bundle_tool_makes_a_bundle_the_server_validates_and_serves(tmp_path):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    r = np.random.RandomState(0)
    X = r.rand(300, 5).astype(np.float32) * [1, 10, 100, 1, 5]
    y = (X[:, 0] + X[:, 1] / 10 > 1).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    joblib.dump(model, tmp_path / "m.joblib")
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", header="a,b,c,d,e", comments="")
    out = tmp_path / "repo" / "tool" / "1"
    subprocess.run([sys.executable, str(PACKAGE_ROOT / "tools/make_bundle.py"), "--model", str(tmp_path / "m.joblib"),
                    "--reference", str(tmp_path / "X.csv"), "--out", str(out)], check=True, timeout=120)
    assert subprocess.run([str(apus_binary()), "bundle", "validate", str(out)], capture_output=True, timeout=60).returncode == 0
    server = ApusServer(apus_binary(), tmp_path / "repo", []).start()
    try:
        r = httpx.post(f"{server.url}/predict/tool", json={"features": X[:3].tolist()}, timeout=10)
        assert r.status_code == 200 and r.json()["predictions"] == model.predict(X[:3]).tolist(), r.text
        meta = httpx.get(f"{server.url}/v2/models/tool", timeout=10).json()
        assert meta["inputs"][0]["features"] == ["a", "b", "c", "d", "e"]
    finally:
        server.kill()


def test_access_log_has_one_json_line_per_answered_request_over_both_protocols_and_sigterm_flushes_it(repo, tmp_path):
    out = tmp_path / "stdout.log"
    server = ApusServer(apus_binary(), repo, ["--access-log"], stdout=out).start()
    try:
        rows = np.full((1, 20), 0.25, np.float32)
        body = json.dumps({"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": rows.reshape(-1).tolist()}]})
        h2 = subprocess.run(["curl", "-s", "-o", "/dev/null", "--http2-prior-knowledge", "-H", "content-type: application/json",
                             "-H", 'x-request-id: log "me"', "-H", "x-forwarded-for: 198.51.100.4", "--data", body,
                             f"{server.url}/v2/models/logreg/infer"], timeout=10)
        assert h2.returncode == 0
        split = infer_json(server.url, "churn", np.load(ZOO / "rf_binary" / "inputs.npy").astype(np.float32)[:2],
                           headers={"apus-routing-key": "user-7"})
        assert split.status_code == 200, split.text
        assert httpx.get(f"{server.url}/v2/health/ready?probe=1", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/v2/models/nope", timeout=10).status_code == 404
        lines = json_lines([out], until=lambda lines: len(lines) >= 4)
        assert len(lines) == 4, out.read_text()
        by_path = {line["path"]: line for line in lines}
        logged = by_path["/v2/models/logreg/infer"]
        assert logged["protocol"] == "HTTP/2" and logged["method"] == "POST" and logged["status"] == 200
        assert logged["request_id"] == 'log "me"' and logged["model_version"] == "1" and logged["bytes"] > 0
        assert logged["forwarded_for"] == "198.51.100.4" and "traceparent" not in logged
        assert re.fullmatch(r"127\.0\.0\.1:\d+", logged["peer"]), logged
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", logged["time"]), logged
        assert 0 <= logged["duration_us"] < 10_000_000
        churn = by_path["/v2/models/churn/infer"]
        assert churn["protocol"] == "HTTP/1.1" and churn["variant"] == split.headers["apus-variant"]
        assert churn["model_version"] == split.headers["apus-model-version"] and churn["request_id"] == split.headers["x-request-id"]
        assert by_path["/v2/health/ready?probe=1"]["status"] == 200 and "model_version" not in by_path["/v2/health/ready?probe=1"]
        assert by_path["/v2/models/nope"]["status"] == 404
        # Answers given just before SIGTERM are written at exit, not lost with the buffer.
        assert httpx.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
        server.terminate()
        assert server.wait_exit(15) == 0
        assert [line["path"] for line in json_lines([out], until=lambda lines: len(lines) >= 5)][-1] == "/v2/health/live"
    finally:
        server.kill()


def test_log_format_json_writes_every_server_log_line_as_one_json_object(repo):
    server = ApusServer(apus_binary(), repo, ["--log-format", "json"]).start()
    try:
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
        server.terminate()
        assert server.wait_exit(15) == 0
    finally:
        server.kill()
    lines = [json.loads(line) for line in server.log().splitlines()]
    listening = next(line for line in lines if line["message"] == "listening")
    assert listening["level"] == "info" and listening["port"] == str(server.port) and listening["host"] == "127.0.0.1"
    assert any(line["message"] == "serving" and "churn/1" in line["versions"] for line in lines), lines
    assert any(line["message"] == "shutting down" and line["signal"] == "15" for line in lines), lines
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) for line in lines)
