"""deploy/: the Prometheus alert rules (promtool check + unit tests), the Grafana dashboard (structure,
and every query against what a real `apus serve` exports, evaluated by a real Prometheus), the
Kubernetes manifests (schema-validated with kubernetes-validate's OpenAPI schemas, strict, plus the
cross-references a schema cannot see), the model-sync sidecar script (busybox sh + rclone against a
real server), and the Dockerfile's consistency with the repository."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from apus_net import free_port
from conftest import ApusServer, PACKAGE_ROOT, apus_binary, bundle

DEPLOY = PACKAGE_ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "apus-dashboard.json"
ZOO = PACKAGE_ROOT / "Tests/ApusRuntimeTests/Fixtures/zoo"

# Metric names in a PromQL expression (Prometheus' own `up` is not exported by Apus).
METRIC = re.compile(r"\b((?:apus|process)_[a-z0-9_]+)\b")




def rows_body(value: float = 0.5) -> dict:
    return {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": [value] * 20}]}


def dashboard_targets() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in doc["panels"] for target in panel.get("targets", [])]


def alert_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load((PROM / "apus-alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


# ---------------------------------------------------------------------------------------------------
# Prometheus rules


def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    check = subprocess.run(["promtool", "check", "rules", str(PROM / "apus-alerts.yml")], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 9 rules found" in check.stdout, check.stdout
    unit = subprocess.run(["promtool", "test", "rules", "apus-alerts.test.yml"], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    names = {name for name, _ in alert_exprs()}
    assert {"ApusHighErrorRate", "ApusHighLatencyP99", "ApusModelLoadFailures", "ApusFeatureDrift", "ApusNoReadyVersion",
            "ApusDown"} <= names, names
    drift = yaml.safe_load((PROM / "apus-alerts.yml").read_text())
    rules = {r["alert"]: r for g in drift["groups"] for r in g["rules"]}
    assert "> 0.2" in rules["ApusFeatureDrift"]["expr"] and rules["ApusFeatureDrift"]["for"] == "15m"
    # Every alert is covered by the unit tests.
    tested = {case["alertname"] for test in yaml.safe_load((PROM / "apus-alerts.test.yml").read_text())["tests"]
              for case in test["alert_rule_test"]}
    assert names <= tested, names - tested


# ---------------------------------------------------------------------------------------------------
# Grafana dashboard: structure


def test_dashboard_is_valid_grafana_json_with_a_datasource_variable():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["schemaVersion"] == 39 and doc["uid"] and doc["title"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance", "model"):
        assert variables[name]["type"] == "query" and variables[name]["datasource"]["uid"] == "${datasource}", name
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] >= 1 and pos["x"] + pos["w"] <= 24 and pos["h"] >= 1, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "heatmap"}, panel["type"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}" and target["expr"].strip(), panel["title"]
            assert 'job="$job"' in target["expr"], (panel["title"], "every query is scoped to the job variable")
    # What the issue asks the dashboard to show.
    exprs = " ".join(e for _, e in dashboard_targets())
    for needle in ("apus_requests_total", "apus_request_duration_seconds_bucket", "apus_queue_duration_seconds_bucket",
                   "apus_compute_duration_seconds_bucket", "apus_batch_rows", "apus_inflight_requests", "apus_queue_rows",
                   "apus_model_version_state", "apus_model_load_failures_total", "apus_feature_drift_ks_statistic",
                   "apus_ab_assignments_total", "apus_connections_open", "process_resident_memory_bytes",
                   "process_cpu_seconds_total", "histogram_quantile(0.5,", "histogram_quantile(0.99,"):
        assert needle in exprs, needle


# ---------------------------------------------------------------------------------------------------
# Dashboard and alert queries against a real server (and a real Prometheus)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A server whose /metrics shows every family the dashboard uses: A/B split with a shadow,
    feedback outcomes, a running canary, a dropped (deadline) request, drift samples."""
    repo = tmp_path_factory.mktemp("deploy-repo")
    bundle(repo, "churn", 1, "rf_binary")
    bundle(repo, "churn", 2, "xgb_binary")
    (repo / "churn" / "model.json").write_text(json.dumps({
        "version_policy": "all", "labels": {"stable": 1, "canary": 2},
        "split": {"salt": "churn-2026", "variants": [{"name": "stable", "label": "stable", "weight": 9000},
                                                     {"name": "canary", "label": "canary", "weight": 1000}],
                  "shadow": {"version": 2}}}))
    server = ApusServer(apus_binary(), repo, ["--drift-interval", "1"]).start()
    try:
        url = server.url
        with httpx.Client(timeout=10) as client:
            rng = np.random.RandomState(7)
            for i in range(150):
                body = {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": (rng.rand(20) * 3).tolist()}]}
                r = client.post(f"{url}/v2/models/churn/infer", json=body, headers={"apus-routing-key": f"user-{i}", "x-request-id": f"req-{i}"})
                assert r.status_code == 200, r.text
            assert client.post(f"{url}/v2/models/churn/infer", json=rows_body()).status_code == 200          # keyless: random
            assert client.post(f"{url}/v2/models/churn/infer", content=b"{", headers={"content-type": "application/json"}).status_code == 400
            r = client.post(f"{url}/v2/models/churn/infer", json=rows_body(), headers={"apus-timeout-ms": "0.000001"})
            assert r.status_code == 504, r.text                                                                  # dropped: deadline
            fb = client.post(f"{url}/v2/models/churn/feedback", json={"request_id": "req-1", "value": 1})
            assert fb.status_code == 200, fb.text
            policy = {"baseline": "stable", "canary": "canary", "steps": [20, 50], "window_s": 600, "min_requests": 100000}
            r = client.post(f"{url}/v2/models/churn/canary", json=policy)
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            text = httpx.get(f"{url}/metrics", timeout=5).text
            if "apus_feature_drift_ks_statistic{" in text:
                break
            time.sleep(0.2)
        yield server
    finally:
        server.kill()


def exported_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_dashboard_and_alert_query_names_metrics_the_server_exports(live):
    names = exported_names(httpx.get(f"{live.url}/metrics", timeout=5).text)
    missing = {}
    for source, items in (("dashboard", dashboard_targets()), ("alerts", alert_exprs())):
        for title, expr in items:
            used = set(METRIC.findall(expr))
            assert used or "up{" in expr, (source, title, expr)
            unknown = used - names
            if unknown:
                missing[f"{source}: {title}"] = sorted(unknown)
    assert not missing, f"queries name metrics that /metrics does not export: {missing}\nexported: {sorted(names)}"


def grafana_to_promql(expr: str) -> str:
    return (expr.replace("$__rate_interval", "10s").replace("$__range", "1m").replace("$job", "apus")
            .replace("$instance", ".*").replace("$model", ".*"))


def test_dashboard_and_alert_queries_evaluate_on_a_real_prometheus(live, tmp_path):
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed (scripts/install-deps.sh --test installs it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: apus\n"
                      f"    static_configs:\n      - targets: ['127.0.0.1:{live.port}']\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        # Wait for a dozen scrapes (rates need two samples in their 10 s window), with traffic between them.
        deadline = time.monotonic() + 60
        samples = 0
        while time.monotonic() < deadline:
            try:
                result = httpx.get(api, params={"query": "count_over_time(up{job=\"apus\"}[1m])"}, timeout=2).json()["data"]["result"]
                samples = int(float(result[0]["value"][1])) if result else 0
            except (httpx.HTTPError, ValueError, KeyError):
                samples = 0
            if samples >= 12:
                break
            httpx.post(f"{live.url}/v2/models/churn/infer", json=rows_body(), headers={"apus-routing-key": f"k{samples}"}, timeout=5)
            time.sleep(0.5)
        assert samples >= 12, "prometheus did not scrape apus"
        errors, empty = {}, []
        for source, items in (("dashboard", dashboard_targets()), ("alerts", alert_exprs())):
            for title, expr in items:
                response = httpx.get(api, params={"query": grafana_to_promql(expr)}, timeout=10).json()
                if response["status"] != "success":
                    errors[f"{source}: {title}"] = response.get("error")
                elif source == "dashboard" and not response["data"]["result"] and 'code="5xx"' not in expr:
                    empty.append(f"{title}: {expr}")
        assert not errors, errors
        # Every dashboard query shows data (only the 5xx ones may be empty: the server served none).
        assert not empty, "\n".join(empty)
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------------------------
# Kubernetes manifests


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def rendered_manifests() -> dict[str, dict]:
    """kustomization.yaml's resources (+ the generated script ConfigMap) and servicemonitor.yaml, by kind."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = [doc for resource in kustomization["resources"] for doc in load_docs(K8S / resource)]
    for generator in kustomization["configMapGenerator"]:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
                     "data": {Path(f).name: (K8S / f).read_text() for f in generator["files"]}})
    docs += load_docs(K8S / "servicemonitor.yaml")
    by_kind: dict[str, dict] = {}
    for doc in docs:
        key = doc["kind"] if doc["kind"] != "ConfigMap" else f"ConfigMap/{doc['metadata']['name']}"
        assert key not in by_kind, key
        by_kind[key] = doc
    return by_kind


SERVICE_MONITOR_SCHEMA = {
    # The fields deploy/ uses, as the prometheus-operator CRD (monitoring.coreos.com/v1) defines them.
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "spec": {"type": "object", "required": ["selector", "endpoints"], "additionalProperties": False, "properties": {
            "selector": {"type": "object", "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                         "additionalProperties": False},
            "namespaceSelector": {"type": "object"},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string"}, "path": {"type": "string"}, "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                    "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                    "scrapeTimeout": {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                    "relabelings": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
                        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
                        "targetLabel": {"type": "string"}, "regex": {"type": "string"}, "replacement": {"type": "string"},
                        "action": {"type": "string"}}}}}}}}},
    },
}


def test_kubernetes_manifests_validate_against_the_kubernetes_openapi_schemas():
    from kubernetes_validate import utils as kv
    import jsonschema
    manifests = rendered_manifests()
    for key, doc in manifests.items():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        for version in ("1.29.0", "1.37.0"):   # the oldest and newest Kubernetes the manifests target
            try:
                kv.validate(doc, version, strict=True)
            except kv.ValidationError as error:
                raise AssertionError(f"{key} is not a valid {doc['kind']} for Kubernetes {version}: {error}") from None
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"} <= set(manifests)
    # The validator does catch mistakes (strict: unknown fields, wrong types).
    broken = copy.deepcopy(manifests["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = broken["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.37.0", strict=True)
    broken = copy.deepcopy(manifests["Deployment"])
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.37.0", strict=True)


def container(deployment: dict, name: str) -> dict:
    spec = deployment["spec"]["template"]["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def test_kubernetes_manifests_hang_together():
    m = rendered_manifests()
    deployment, service, hpa, monitor = m["Deployment"], m["Service"], m["HorizontalPodAutoscaler"], m["ServiceMonitor"]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    apus = container(deployment, "apus")
    # The command line the issue asks for, and the drain budget.
    assert apus["image"] == "apus:latest"
    args = apus["args"]
    assert args[:7] == ["serve", "--host", "0.0.0.0", "--port", "8080", "--model-repository", "/models"], args
    drain = float(args[args.index("--drain-timeout") + 1])
    pre_stop = apus["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 2 <= int(pre_stop[1]) <= 10
    assert spec["terminationGracePeriodSeconds"] == 30 and drain == 25
    assert int(pre_stop[1]) + drain < spec["terminationGracePeriodSeconds"], "preStop + drain must end before SIGKILL"
    # Every flag is one `apus serve` knows (a typo would crash-loop the pod).
    known = set(re.findall(r"--[a-z-]+", subprocess.run([str(apus_binary()), "serve", "--help"], capture_output=True, text=True,
                                                        timeout=30).stdout))
    assert "--log-format" in args and {arg for arg in args if arg.startswith("--")} <= known, (args, known)
    # $(APUS_THREADS) is defined in the container's env.
    for arg in args:
        for ref in re.findall(r"\$\(([A-Z_]+)\)", arg):
            assert any(e["name"] == ref for e in apus.get("env", [])), ref
    # Probes.
    assert apus["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert apus["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    ports = {p["name"]: p["containerPort"] for p in apus["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert apus[probe]["httpGet"]["port"] in ports or apus[probe]["httpGet"]["port"] in ports.values(), probe
    # Every container: resources, non-root, read-only root, no privilege escalation.
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in spec["volumes"]}
    for c in spec.get("initContainers", []) + spec["containers"]:
        assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], c["name"]
        for mount in c.get("volumeMounts", []):
            assert mount["name"] in volumes, (c["name"], mount["name"])
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                assert f"ConfigMap/{ref['name']}" in m, ref
    # The model volume: Apus at /models, the sync at its parent, same volume.
    models_mount = next(mt for mt in apus["volumeMounts"] if mt["mountPath"] == "/models")
    sync = container(deployment, "model-sync")
    assert any(mt["name"] == models_mount["name"] and mt["mountPath"] == "/data" for mt in sync["volumeMounts"])
    assert models_mount.get("subPath") == "models" and not models_mount.get("readOnly", False)
    for name, volume in volumes.items():
        if "configMap" in volume:
            assert f"ConfigMap/{volume['configMap']['name']}" in m, name
    # Service -> pods, HPA -> Deployment, ServiceMonitor -> Service, annotations -> port.
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service_port = service["spec"]["ports"][0]
    assert service_port["targetPort"] in ports and service_port["port"] == 8080
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu" and hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service_port["name"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    # Every file kustomization.yaml names exists, and every manifest in the folder is named there
    # (servicemonitor.yaml aside: it needs the Prometheus Operator's CRDs).
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "servicemonitor.yaml"}
    assert listed == on_disk, (listed, on_disk)


# ---------------------------------------------------------------------------------------------------
# The model-sync sidecar script: busybox sh + rclone, against a real server polling the repository

BUSYBOX_APPLETS = ("sh", "basename", "cat", "cmp", "cp", "cut", "date", "diff", "ls", "mkdir", "mv", "printf", "rm",
                   "sed", "sha256sum", "sleep", "tr")


@pytest.fixture
def sync_env(tmp_path):
    """PATH with busybox applets and rclone only: what the rclone image (Alpine) offers."""
    for tool in ("busybox", "rclone"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/install-deps.sh --test installs it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for applet in BUSYBOX_APPLETS:
        (bin_dir / applet).symlink_to(shutil.which("busybox"))
    (bin_dir / "rclone").symlink_to(shutil.which("rclone"))
    (tmp_path / "rclone.conf").write_text("")
    bucket, data = tmp_path / "bucket", tmp_path / "data"
    bucket.mkdir()
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
           "APUS_SYNC_SOURCE": str(bucket), "APUS_SYNC_DATA": str(data), "APUS_SYNC_INTERVAL": "1"}
    return env, bucket, data


def run_sync(env: dict, mode: str = "once") -> subprocess.CompletedProcess:
    return subprocess.run([env["PATH"] + "/sh", str(K8S / "model-sync" / "apus-model-sync.sh"), mode], env=env,
                          capture_output=True, text=True, timeout=120)


def index_states(server: ApusServer) -> dict[str, str]:
    return {e["version"]: e["state"] for e in httpx.post(f"{server.url}/v2/repository/index", timeout=5).json() if e["name"] == "churn"}


def wait_states(server: ApusServer, want: dict[str, str], timeout: float = 15) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = index_states(server)
        if all(states.get(v) == s for v, s in want.items()):
            return states
        time.sleep(0.1)
    raise AssertionError(f"versions did not reach {want}: {states}")


def load_failures(server: ApusServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return float(re.search(r"^apus_model_load_failures_total (\S+)$", text, re.M).group(1))


def test_model_sync_publishes_only_complete_versions_and_keeps_apus_label_moves(sync_env, tmp_path):
    env, bucket, data = sync_env
    staging = tmp_path / "built"
    bundle(staging, "churn", 1, "rf_binary")
    bundle(staging, "churn", 2, "xgb_binary")
    shutil.copytree(staging / "churn" / "1", bucket / "churn" / "1")
    (bucket / "churn" / "model.json").write_text(json.dumps({"version_policy": "all", "labels": {"stable": 1}}))

    # Init container: one pass, then Apus starts on a complete repository.
    first = run_sync(env)
    assert first.returncode == 0, first.stderr
    assert (data / "models" / "churn" / "1" / "model.onnx").exists() and (data / "models" / "churn" / "model.json").exists()
    # Apus rescans every 0.2 s (the later --poll-interval wins), so it would catch any half-published version.
    server = ApusServer(apus_binary(), data / "models", ["--poll-interval", "0.2"]).start()
    try:
        wait_states(server, {"1": "READY"})
        # A version uploaded half-way to the bucket: not published, so never FAILED.
        (bucket / "churn" / "2").mkdir()
        shutil.copy(staging / "churn" / "2" / "manifest.json", bucket / "churn" / "2" / "manifest.json")
        onnx = (staging / "churn" / "2" / "model.onnx").read_bytes()
        (bucket / "churn" / "2" / "model.onnx").write_bytes(onnx[: len(onnx) // 2])
        partial = run_sync(env)
        assert partial.returncode == 0, partial.stderr
        assert "churn/2: incomplete in the source" in partial.stderr, partial.stderr
        assert not (data / "models" / "churn" / "2").exists()
        # Upload finished (model file and reference): published in one rename; Apus loads it.
        (bucket / "churn" / "2" / "model.onnx").write_bytes(onnx)
        shutil.copy(staging / "churn" / "2" / "reference.npy", bucket / "churn" / "2" / "reference.npy")
        done = run_sync(env)
        assert done.returncode == 0 and "churn/2: published" in done.stderr, done.stderr
        wait_states(server, {"1": "READY", "2": "READY"})
        assert load_failures(server) == 0
        assert not any((data / "incoming").iterdir()) and not any((data / "trash").iterdir())
        # A label moved through Apus's API (rewrites model.json) survives a pass with an unchanged bucket...
        moved = httpx.put(f"{server.url}/v2/repository/models/churn/labels/stable", json={"version": 2}, timeout=5)
        assert moved.status_code == 200, moved.text
        again = run_sync(env)
        assert again.returncode == 0, again.stderr
        assert json.loads((data / "models" / "churn" / "model.json").read_text())["labels"]["stable"] == 2
        # ...while a model.json changed in the bucket is published.
        (bucket / "churn" / "model.json").write_text(json.dumps({"version_policy": "all", "labels": {"stable": 1, "canary": 2}}))
        changed = run_sync(env)
        assert changed.returncode == 0 and "churn: model.json published" in changed.stderr, changed.stderr
        assert json.loads((data / "models" / "churn" / "model.json").read_text())["labels"] == {"stable": 1, "canary": 2}
        # A version deleted from the bucket leaves the repository; Apus unloads it.
        shutil.rmtree(bucket / "churn" / "1")
        removed = run_sync(env)
        assert removed.returncode == 0 and "churn/1: removed" in removed.stderr, removed.stderr
        assert not (data / "models" / "churn" / "1").exists()
        deadline = time.monotonic() + 15
        while index_states(server).get("1") == "READY" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert index_states(server).get("1") != "READY" and index_states(server).get("2") == "READY", index_states(server)
        # An empty (or wrongly named) source never empties a serving repository.
        shutil.rmtree(bucket / "churn")
        empty = run_sync(env)
        assert empty.returncode != 0 and "is empty" in empty.stderr, empty.stderr
        assert (data / "models" / "churn" / "2" / "model.onnx").exists()
        assert load_failures(server) == 0
    finally:
        server.kill()


def test_model_sync_loop_keeps_syncing_and_stops_on_sigterm(sync_env, tmp_path):
    import signal
    env, bucket, data = sync_env
    bundle(bucket, "logreg", 1, "logreg_binary")
    proc = subprocess.Popen([env["PATH"] + "/sh", str(K8S / "model-sync" / "apus-model-sync.sh"), "loop"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (data / "models" / "logreg" / "1").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (data / "models" / "logreg" / "1").exists()
        bundle(tmp_path / "later", "logreg", 2, "logreg_binary")
        shutil.copytree(tmp_path / "later" / "logreg" / "2", bucket / "logreg" / "2")
        deadline = time.monotonic() + 30
        while not (data / "models" / "logreg" / "2").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (data / "models" / "logreg" / "2").exists()
        assert (data / "state" / "last-success").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ---------------------------------------------------------------------------------------------------
# Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (PACKAGE_ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_consistent_with_the_repository():
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) == 2 and re.match(r"swift:\$\{SWIFT_VERSION\}-bookworm AS build", froms[0]) and froms[1] == "debian:bookworm-slim", froms
    swift_version = next(rest for word, rest in instructions if word == "ARG" and rest.startswith("SWIFT_VERSION="))
    assert re.fullmatch(r"SWIFT_VERSION=6\.\d+", swift_version), swift_version
    runs = [rest for word, rest in instructions if word == "RUN"]
    build_stage = " ".join(runs[:3])
    # The build stage installs what scripts/install-deps.sh installs for a build.
    install_deps = (PACKAGE_ROOT / "scripts/install-deps.sh").read_text()
    build_pkgs = re.search(r"for pkg in ([^;]+); do\n\s+have_pkg", install_deps).group(1).split()
    assert build_pkgs and all(pkg in build_stage for pkg in build_pkgs), (build_pkgs, build_stage)
    assert "swift build -c release --product apus" in build_stage
    # The image's binary is built as scripts/build-release.sh builds the benchmarked one.
    release_script = (PACKAGE_ROOT / "scripts/build-release.sh").read_text()
    for flag in ("--static-swift-stdlib", "--experimental-lto-mode=full"):
        assert flag in build_stage and flag in release_script, flag
    runtime = runs[-1]
    assert "libnghttp2-14" in runtime and "zlib1g" in runtime and "libjemalloc2" in runtime and "useradd" in runtime
    user = next(rest for word, rest in instructions if word == "USER")
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0", user
    assert ("EXPOSE", "8080") in instructions
    assert ("ENTRYPOINT", '["apus"]') in instructions
    cmd = json.loads(next(rest for word, rest in instructions if word == "CMD"))
    assert cmd == ["serve", "--host", "0.0.0.0", "--model-repository", "/models"]
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert any(c.endswith("examples/models /models") for c in copies), copies
    assert (PACKAGE_ROOT / "examples/models").is_dir()
    # .dockerignore keeps every folder Package.swift names (the manifest does not load without them).
    ignored = [l.strip() for l in (PACKAGE_ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    manifest = (PACKAGE_ROOT / "Package.swift").read_text()
    needed = {"Sources", "Tests", "Package.swift", *re.findall(r'path: "([^"]+)"', manifest), "examples/models"}
    for path in needed:
        top = path.split("/")[0]
        assert not any(pattern in (path, top, top + "/") for pattern in ignored), (path, ignored)
    assert ".git" in ignored and any(p.startswith(".build") for p in ignored)
