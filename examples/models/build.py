#!/usr/bin/env python3
"""Regenerates the example model repository (deterministic, fixed seeds):

    churn/1   RandomForestClassifier(50 trees, depth 8)         label "stable"
    churn/2   GradientBoostingClassifier(60 trees, depth 3)     label "canary"
    churn/model.json   both versions served, 90/10 A/B split (salt churn-2026)
    housing/1 GradientBoostingRegressor on 6 features           (no model.json: latest version)

on a synthetic churn data set with 8 named features. Needs scikit-learn, skl2onnx, numpy (PyPI)
and a built `apus` (bundles are made with `apus bundle create`, which also validates them).

    python3 examples/models/build.py [--apus .build/debug/apus]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHURN_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "contract_monthly", "paperless_billing",
                  "total_charges", "num_products", "late_payments"]
HOUSING_FEATURES = ["rooms", "area_m2", "age_years", "distance_km", "floor", "has_garden"]


def churn_data(n=4000, seed=7):
    r = np.random.RandomState(seed)
    tenure = r.randint(0, 72, n).astype(np.float32)
    monthly = r.uniform(20, 120, n).astype(np.float32)
    calls = r.poisson(1.5, n).astype(np.float32)
    monthly_contract = r.binomial(1, 0.55, n).astype(np.float32)
    paperless = r.binomial(1, 0.6, n).astype(np.float32)
    total = (tenure * monthly * r.uniform(0.9, 1.1, n)).astype(np.float32)
    products = r.randint(1, 5, n).astype(np.float32)
    late = r.poisson(0.5, n).astype(np.float32)
    X = np.stack([tenure, monthly, calls, monthly_contract, paperless, total, products, late], axis=1)
    logit = -1.5 - 0.04 * tenure + 0.02 * monthly + 0.45 * calls + 1.2 * monthly_contract + 0.3 * late - 0.2 * products
    y = (r.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def housing_data(n=3000, seed=11):
    r = np.random.RandomState(seed)
    rooms = r.randint(1, 7, n)
    area = rooms * r.uniform(15, 30, n)
    age = r.uniform(0, 80, n)
    dist = r.exponential(8, n)
    floor = r.randint(0, 12, n)
    garden = r.binomial(1, 0.3, n)
    X = np.stack([rooms, area, age, dist, floor, garden], axis=1).astype(np.float32)
    y = (2500 * area - 800 * age - 3000 * dist + 1500 * floor + 20000 * garden + r.normal(0, 15000, n)).astype(np.float32)
    return X, y


def to_onnx(model, width, path):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    onx = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, width]))], options=options, target_opset=15)
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())


def bundle(apus, onnx, X, out, name, version, features, metrics):
    with tempfile.TemporaryDirectory() as tmp:
        ref = os.path.join(tmp, "reference.csv")
        with open(ref, "w") as f:
            f.write(",".join(features) + "\n")
            for row in X[:500]:
                f.write(",".join(f"{v:.6g}" for v in row) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([apus, "bundle", "create", "--onnx", onnx, "--reference", ref, "--out", out, "--name", name,
                        "--version", str(version), "--metrics", ",".join(f"{k}={v:.4f}" for k, v in metrics.items()),
                        "--data-version", "synthetic-2026-11"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--apus", default=os.path.join(ROOT, ".build/debug/apus"))
    args = ap.parse_args()
    from sklearn.ensemble import RandomForestClassifier, GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.metrics import roc_auc_score, r2_score
    X, y = churn_data()
    Xtr, Xte, ytr, yte = X[:3000], X[3000:], y[:3000], y[3000:]
    with tempfile.TemporaryDirectory() as tmp:
        for version, model in ((1, RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0)),
                               (2, GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0))):
            model.fit(Xtr, ytr)
            auc = roc_auc_score(yte, model.predict_proba(Xte)[:, 1])
            onnx = os.path.join(tmp, f"churn{version}.onnx")
            to_onnx(model, X.shape[1], onnx)
            bundle(args.apus, onnx, Xtr, os.path.join(HERE, "churn", str(version)), "churn", version, CHURN_FEATURES,
                   {"auc": auc, "accuracy": float((model.predict(Xte) == yte).mean())})
        with open(os.path.join(HERE, "churn", "model.json"), "w") as f:
            json.dump({"version_policy": "all", "labels": {"stable": 1, "canary": 2},
                       "batching": {"max_batch_size": 64, "max_queue_delay_us": 200},
                       "split": {"salt": "churn-2026", "variants": [{"name": "stable", "label": "stable", "weight": 9000},
                                                                    {"name": "canary", "label": "canary", "weight": 1000}]}},
                      f, indent=2, sort_keys=True)
            f.write("\n")
        Xh, yh = housing_data()
        reg = GradientBoostingRegressor(n_estimators=80, max_depth=3, random_state=0).fit(Xh[:2400], yh[:2400])
        onnx = os.path.join(tmp, "housing.onnx")
        to_onnx(reg, Xh.shape[1], onnx)
        bundle(args.apus, onnx, Xh, os.path.join(HERE, "housing", "1"), "housing", 1, HOUSING_FEATURES,
               {"r2": r2_score(yh[2400:], reg.predict(Xh[2400:]))})
    # Example requests.
    req = os.path.join(ROOT, "examples", "requests")
    os.makedirs(req, exist_ok=True)
    rows = X[3000:3002]
    with open(os.path.join(req, "churn-2rows.json"), "w") as f:
        json.dump({"id": "example-1", "inputs": [{"name": "input", "shape": [2, 8], "datatype": "FP32",
                                                  "data": [float(v) for v in rows.reshape(-1)]}]}, f, indent=1)
    with open(os.path.join(req, "churn-predict.json"), "w") as f:
        json.dump({"features": [float(v) for v in X[3000]]}, f)
    with open(os.path.join(req, "housing-predict.json"), "w") as f:
        json.dump({"features": [float(v) for v in Xh[2400]]}, f)
    print("example repository written to", HERE)


if __name__ == "__main__":
    main()
