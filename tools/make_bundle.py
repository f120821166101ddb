#!/usr/bin/env python3
"""Turns a fitted scikit-learn, XGBoost or LightGBM model into an Apus bundle folder
(<repo>/<model>/<version>/: model.onnx, reference.npy, manifest.json with sha256 of every file),
for teams whose world is Python. See docs/bundles.md.

As a library:
    from make_bundle import make_bundle
    make_bundle(model, X_train, "models/churn/3", name="churn", version=3, feature_names=[...], metrics={"auc": 0.91})

From the shell (a pickled/joblib model and a CSV or NPY reference sample):
    python3 tools/make_bundle.py --model model.joblib --reference X.csv --out models/churn/3 [--name churn] [--version 3]

Conversion: skl2onnx for scikit-learn (pipelines included), onnxmltools for XGBoost and LightGBM
(installed from PyPI when needed); classifiers are exported without ZipMap, so they answer a label
tensor and a probability tensor. The result is checked with onnxruntime on the reference sample
against the model's own predictions before anything is written.
"""
import argparse, hashlib, json, os, shutil, sys, tempfile

import numpy as np


def _onnx_from_model(model, width):
    kind = type(model).__module__.split(".")[0]
    if kind in ("xgboost", "lightgbm"):
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
        convert = onnxmltools.convert_xgboost if kind == "xgboost" else onnxmltools.convert_lightgbm
        onx = convert(model, initial_types=[("input", FloatTensorType([None, width]))], target_opset=15)
        if hasattr(model, "predict_proba"):
            from onnx import helper
            # onnxmltools adds a ZipMap for classifiers: drop it, keep the probability tensor.
            graph = onx.graph
            zipmaps = [n for n in graph.node if n.op_type == "ZipMap"]
            for node in zipmaps:
                graph.node.remove(node)
                for out in list(graph.output):
                    if out.name == node.output[0]:
                        graph.output.remove(out)
                        graph.output.append(helper.make_tensor_value_info(node.input[0], 1, [None, None]))
        return onx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    return convert_sklearn(model, initial_types=[("input", FloatTensorType([None, width]))], options=options, target_opset=15)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _spec(value_info):
    t = value_info.type.tensor_type
    names = {1: "FP32", 6: "INT32", 7: "INT64", 9: "BOOL", 11: "FP64"}
    return {"name": value_info.name, "datatype": names.get(t.elem_type, "FP32"),
            "shape": [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim] or [-1]}


def make_bundle(model, X_reference, out_dir, name, version, feature_names=None, metrics=None, data_version=None, batching=None):
    X = np.ascontiguousarray(np.asarray(X_reference, dtype=np.float32))
    if X.ndim != 2 or len(X) == 0:
        raise ValueError("X_reference must be a non-empty 2-D array [rows, features]")
    if feature_names is not None and len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {X.shape[1]} columns")
    import onnxruntime as ort
    onx = _onnx_from_model(model, X.shape[1])
    sample = X[:1000]
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: sample})
    if hasattr(model, "predict_proba"):
        expected = np.asarray(model.predict_proba(sample), dtype=np.float32)
        probs = next(o for o in got if np.asarray(o).ndim == 2)
        if not np.allclose(probs, expected, rtol=1e-4, atol=1e-5):
            raise RuntimeError("the ONNX export disagrees with the model's predict_proba on the reference sample")
    else:
        expected = np.asarray(model.predict(sample), dtype=np.float32).reshape(-1)
        if not np.allclose(np.asarray(got[0]).reshape(-1), expected, rtol=1e-4, atol=1e-4):
            raise RuntimeError("the ONNX export disagrees with the model's predict on the reference sample")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    try:
        with open(os.path.join(tmp, "model.onnx"), "wb") as f:
            f.write(onx.SerializeToString())
        np.save(os.path.join(tmp, "reference.npy"), sample)
        inputs = [_spec(i) for i in onx.graph.input]
        if feature_names is not None:
            inputs[0]["features"] = list(feature_names)
        manifest = {"name": name, "version": int(version), "model_file": "model.onnx", "inputs": inputs,
                    "outputs": [_spec(o) for o in onx.graph.output], "reference_sample": "reference.npy",
                    "sha256": {f: _sha256(os.path.join(tmp, f)) for f in ("model.onnx", "reference.npy")}}
        if metrics or data_version:
            manifest["training"] = {k: v for k, v in (("metrics", metrics), ("data_version", data_version)) if v}
        if batching:
            manifest["batching"] = batching
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        # Complete, checksummed folder appears in one rename: a server polling the repository
        # never sees half of it.
        if os.path.exists(out_dir):
            raise FileExistsError(f"{out_dir} exists; bundles are immutable, use a new version")
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _load_matrix(path):
    if path.endswith(".npy"):
        return np.load(path), None
    with open(path) as f:
        first = f.readline().strip().split(",")
    try:
        [float(x) for x in first]
        return np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2), None
    except ValueError:
        return np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=1, ndmin=2), first


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a pickle or joblib file of a fitted model")
    ap.add_argument("--reference", required=True, help="training inputs: .npy or .csv (header row optional)")
    ap.add_argument("--out", required=True, help="the version folder to create, <repo>/<model>/<version>")
    ap.add_argument("--name")
    ap.add_argument("--version", type=int)
    ap.add_argument("--features", help="comma-separated feature names (default: the CSV header)")
    args = ap.parse_args()
    import joblib
    model = joblib.load(args.model)
    X, header = _load_matrix(args.reference)
    out = os.path.abspath(args.out)
    name = args.name or os.path.basename(os.path.dirname(out))
    version = args.version if args.version is not None else int(os.path.basename(out))
    features = args.features.split(",") if args.features else header
    make_bundle(model, X, out, name, version, features)
    print(f"bundle {name} version {version} written to {out}")


if __name__ == "__main__":
    main()
