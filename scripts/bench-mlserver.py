#!/usr/bin/env python3
"""Apus next to MLServer (Seldon, from PyPI) on the same scikit-learn model, side by side.

    python3 scripts/bench-mlserver.py [--seconds 5] [--rounds 3]

Two scikit-learn models are fitted once on 20 features: a RandomForestClassifier (100 trees,
depth 10), what users serve, and a LogisticRegression, which costs almost nothing to run, so its
rate is each server's own overhead. MLServer serves their joblib files with `mlserver-sklearn`;
Apus serves the same models converted by `tools/make_bundle.py` (which checks the ONNX against
scikit-learn's own predictions first). Both answer the same KServe v2 JSON request, one row,
with the class probabilities (MLServer is asked for `predict_proba`), checked before timing.

Method, as in scripts/bench-serving.py: each server alone on core 0 (`taskset`, its worker
processes included), h2load on core 1, loopback only, each run bounded; the servers take turns
round by round and the median of the per-round ratios is reported, because this VM's speed
drifts between runs. MLServer runs twice per round: as installed (`parallel_workers` default,
inference in a worker process) and with `parallel_workers: 0` (inference in the server
process, its fastest on one core); the better of the two is the comparison. Load: HTTP/1.1,
4 connections, one request in flight each (what uvicorn serves), and one connection for the
latency at rest. Apus also over h2c, and with its protobuf format, for reference.

MLServer is installed into a virtual environment of its own (.build/bench-venv-mlserver), so
its pinned dependencies never touch the test environment. Prints one JSON document.
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APUS = os.path.join(ROOT, ".build/release/apus")
VENV = os.path.join(ROOT, ".build/bench-venv-mlserver")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from importlib import import_module  # noqa: E402

serving = import_module("bench-serving")


def mlserver_python():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        venv.create(VENV, with_pip=True)
    probe = subprocess.run([python, "-c", "import mlserver, mlserver_sklearn, uvloop; assert uvloop.__version__ < '0.22'"], capture_output=True)
    if probe.returncode != 0:
        # uvloop 0.22 dropped the implicit event loop that MLServer 1.7's worker processes ask
        # for ("There is no current event loop"): every worker died at start.
        subprocess.check_call([python, "-m", "pip", "install", "-q", "mlserver", "mlserver-sklearn", "scikit-learn", "joblib", "uvloop<0.22"])
    return python


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlserver(python, folder, workers):
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    settings = dict(ports, host="127.0.0.1", metrics_endpoint=None)
    if workers is not None:
        settings["parallel_workers"] = workers
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump(settings, f)
    mlserver = os.path.join(os.path.dirname(python), "mlserver")
    proc = subprocess.Popen(["taskset", "-c", "0", mlserver, "start", folder], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"), start_new_session=True)
    url = f"http://127.0.0.1:{ports['http_port']}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mlserver exited: " + proc.stderr.read().decode(errors="replace")[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", ports["http_port"]), timeout=1):
                pass
            ready = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/v2/models/rf/ready"],
                                   capture_output=True, text=True).stdout
            if ready == "200":
                return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("mlserver did not become ready within 180 s")


def stop(proc):
    # MLServer's workers are its children: the whole session goes.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.check_call([os.path.join(ROOT, "scripts/install-deps.sh"), "--bench"])
    subprocess.check_call([os.path.join(ROOT, "scripts/build-release.sh")])
    python = mlserver_python()
    tmp = tempfile.mkdtemp(prefix="apus-mlserver-")
    apus = None
    try:
        import joblib
        import numpy as np
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier
        sys.path.insert(0, os.path.join(ROOT, "tools"))
        from make_bundle import make_bundle
        from sklearn.linear_model import LogisticRegression
        X, y = make_classification(n_samples=5000, n_features=20, random_state=0)
        X = X.astype(np.float32)
        # The forest is what users serve; the logistic regression costs almost nothing to run,
        # so its rate is the server's own overhead.
        models = {
            "rf": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1).fit(X, y),
            "logreg": LogisticRegression(max_iter=1000).fit(X, y),
        }
        folder = os.path.join(tmp, "mlserver")
        repo = os.path.join(tmp, "repo")
        for name, model in models.items():
            model_dir = os.path.join(folder, name)
            os.makedirs(model_dir)
            joblib.dump(model, os.path.join(model_dir, "model.joblib"))
            with open(os.path.join(model_dir, "model-settings.json"), "w") as f:
                json.dump({"name": name, "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}, f)
            make_bundle(model, X[:1000], os.path.join(repo, name, "1"), name, 1)

        row = X[0:1]
        bodies = {}
        for side, outputs in (("apus", None), ("mlserver", [{"name": "predict_proba"}])):
            doc = {"inputs": [{"name": "input", "shape": [1, 20], "datatype": "FP32", "data": row.reshape(-1).tolist()}]}
            if outputs:
                doc["outputs"] = outputs
            bodies[side] = os.path.join(tmp, f"{side}.json")
            with open(bodies[side], "w") as f:
                json.dump(doc, f)
        pb = serving.protobuf_body(tmp, row)
        jh = ["content-type: application/json"]
        pbh = ["content-type: application/x-protobuf"]

        def post(url, body):
            out = subprocess.run(["curl", "-s", "--data-binary", f"@{body}", "-H", jh[0], url], capture_output=True, text=True).stdout
            return json.loads(out)

        aport = free_port()
        apus = serving.Proc([APUS, "serve", "--port", str(aport), "--threads", "1", "--model-repository", repo, "--log-level", "warning"], aport)
        # The answers agree before anything is timed.
        for name, model in models.items():
            got = next(o for o in post(f"http://127.0.0.1:{aport}/v2/models/{name}/infer", bodies["apus"])["outputs"] if o["name"] == "probabilities")["data"]
            assert np.allclose(got, model.predict_proba(row)[0], atol=1e-5), (name, got)

        rounds = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, model in models.items():
                aurl = f"http://127.0.0.1:{aport}/v2/models/{name}/infer"
                one = {"apus_json_h1": serving.h2load(aurl, args.seconds, clients=4, streams=1, body=bodies["apus"], headers=jh, h1=True, server=apus.p.pid)}
                one["apus_json_h1_p50_us"] = serving.h2load_p50_us(aurl, args.seconds, bodies["apus"], jh, h1=True)
                one["apus_json_h2c"] = serving.h2load(aurl, args.seconds, clients=4, streams=1, body=bodies["apus"], headers=jh, server=apus.p.pid)
                one["apus_protobuf_h2c"] = serving.h2load(aurl, args.seconds, clients=4, streams=1, body=pb, headers=pbh, server=apus.p.pid)
                for label, workers in (("mlserver_default", None), ("mlserver_workers0", 0)):
                    proc, url = start_mlserver(python, folder, workers)
                    try:
                        murl = f"{url}/v2/models/{name}/infer"
                        answer = post(murl, bodies["mlserver"])
                        assert np.allclose(answer["outputs"][0]["data"], model.predict_proba(row)[0], atol=1e-5), answer
                        one[label] = serving.h2load(murl, args.seconds, clients=4, streams=1, body=bodies["mlserver"], headers=jh, h1=True)
                        one[label + "_p50_us"] = serving.h2load_p50_us(murl, args.seconds, bodies["mlserver"], jh, h1=True)
                    finally:
                        stop(proc)
                rounds[name].append(one)
        apus.stop()
        apus = None

        def median(values):
            return sorted(values)[len(values) // 2]

        def best(r):
            return max(r["mlserver_default"]["rps"], r["mlserver_workers0"]["rps"])

        def best_p50(r):
            return min(r["mlserver_default_p50_us"], r["mlserver_workers0_p50_us"])

        report = {"request": "one row of 20 features, KServe v2 JSON over HTTP/1.1, 4 connections x 1 request in flight"}
        for name, runs in rounds.items():
            report[name] = {
                "rounds": [{k: (v["rps"] if isinstance(v, dict) else v) for k, v in r.items()} for r in runs],
                "steal": [{k: (v["steal_core0"], v["steal_core1"]) for k, v in r.items() if isinstance(v, dict)} for r in runs],
                "ratio_apus_vs_mlserver_best": median([r["apus_json_h1"]["rps"] / best(r) for r in runs]),
                "ratio_apus_vs_mlserver_default": median([r["apus_json_h1"]["rps"] / r["mlserver_default"]["rps"] for r in runs]),
                "p50_us_apus": median([r["apus_json_h1_p50_us"] for r in runs]),
                "p50_us_mlserver_best": median([best_p50(r) for r in runs]),
                "failed": sum(v["failed"] for r in runs for v in r.values() if isinstance(v, dict)),
            }
        print(json.dumps(report, indent=2))
    finally:
        # A failed check or a peer that would not start must not leave Apus running.
        if apus is not None:
            apus.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
