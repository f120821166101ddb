#!/usr/bin/env python3
"""Generates the extra conformance fixtures in Tests/ApusRuntimeTests/Fixtures/extra/.

Each fixture is a small model trained with a fixed seed on synthetic data, exported to ONNX with
skl2onnx / onnxmltools the way a user would (a few are built by hand with onnx.helper, see
below), and written in the layout of the conformance zoo (Fixtures/zoo/README.md):

    <name>/model.onnx              the model
    <name>/inputs.npy              61 rows (edge values included, see below): float32, or int64
                                   where the graph input is int64 (onehot_int_pipeline)
    <name>/expected_<output>.npy   onnxruntime's outputs for those rows (CPUExecutionProvider,
                                   1 thread): labels int64, values float32 (ZipMap output
                                   stored as a dense [rows, classes] array in class order)
    <name>/meta.json               ops used, opset, IR version, row kinds, library versions

ExtraConformanceTests.swift checks the runtime against these files (labels exact, values within
1e-5 relative / 1e-6 absolute), so `swift test` needs no Python. Requirements (PyPI):

    pip install numpy scikit-learn skl2onnx onnxmltools onnx onnxruntime xgboost lightgbm

Usage:
    python3 tools/gen_fixtures.py              # (re)write the fixtures
    python3 tools/gen_fixtures.py --check      # verify the committed fixtures (writes nothing)
    python3 tools/gen_fixtures.py --only lgbm_regressor --out /tmp/fx

--check regenerates everything into a temporary directory, then verifies that onnxruntime's
outputs on the *committed* model.onnx + inputs.npy still equal the committed expected_*.npy
(labels exact, values to within 1e-7 relative: a different onnxruntime build may move the last
bit). Regenerated files that differ from the committed ones are reported; they fail the check
only when the library versions equal those recorded in meta.json (then the script is not
deterministic). ONNX bytes are never compared: they vary with converter versions.

Input rows. Every fixture has 61 rows (not a multiple of 4 or 8, so the kernels' row-remainder
paths run): held-out samples, then edge rows: zeros, -0.0, 1e-30, +-1e6, alternating +-1e4, one
feature at 1e8 or -1e6, samples scaled by 1e5 and -1e4; tree models also +-3e38, 1e-40
(subnormal), rows with every split feature exactly at one of the model's thresholds and 1 ulp
above / below it (thresholds read from the fitted trees), and rows moving only the first tree's
root feature to its threshold and 1 ulp beside it; NaN rows for models that handle missing
values. Models with integer-coded category columns (onehot_*, column_transformer_churn) also get
rows with unknown, negative and very large codes (with -0 and fractional codes for a float
input, int64 extremes for an int64 one). For models with dense arithmetic (not tree ensembles)
a row whose float32 result is ill-conditioned is left out and listed in meta.json
("conditioning"): evaluating the graph in float32 with another summation order, or with
correctly rounded sums, moves a value by more than a quarter of the test tolerance away from
onnxruntime, or two class scores are nearly tied. Any correct float32 implementation may differ
from onnxruntime by more than the tolerance on such a row, so it would test summation order, not
the runtime.

Models the runtime cannot load (an op or attribute missing from
Sources/ApusRuntime/OpRegistry.swift, mirrored in `unsupported_reason` below) are not written;
the script prints them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests" / "ApusRuntimeTests" / "Fixtures" / "extra"
SEED = 20251130
ROWS = 61
F32 = np.float32


# --------------------------------------------------------------------------------------------
# Library versions and onnxruntime


def versions() -> dict:
    import lightgbm
    import onnxmltools
    import skl2onnx
    import sklearn
    import xgboost

    return {
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnxmltools": onnxmltools.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "xgboost": xgboost.__version__,
        "lightgbm": lightgbm.__version__,
        "python": platform.python_version(),
    }


def ort_session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def run_ort(model_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime's outputs by graph output name; a ZipMap output (list of dicts) becomes a
    dense [rows, classes] float32 array with columns in key order."""
    session = ort_session(model_bytes)
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, {session.get_inputs()[0].name: x})
    out = {}
    for name, value in zip(names, results):
        if isinstance(value, list):
            keys = sorted(value[0].keys()) if value else []
            value = np.array([[row[k] for k in keys] for row in value], dtype=F32).reshape(len(value), len(keys))
        out[name] = np.ascontiguousarray(value)
    return out


# --------------------------------------------------------------------------------------------
# What the runtime can load (mirror of Sources/ApusRuntime/OpRegistry.swift and
# Sources/ApusONNX/ONNXLoader.swift; keep in step with them)

SUPPORTED_OPS = {
    "ai.onnx.ml": {
        "TreeEnsembleClassifier", "TreeEnsembleRegressor", "LinearClassifier", "LinearRegressor",
        "Scaler", "Normalizer", "Binarizer", "Imputer", "ArrayFeatureExtractor", "ZipMap",
        "OneHotEncoder",
    },
    "ai.onnx": {
        "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "Relu", "Sigmoid", "Tanh", "Identity",
        "Softmax", "ArgMax", "Cast", "Reshape", "Flatten", "Concat", "Gather",
    },
}
REJECTED_ATTRIBUTES = {
    "TreeEnsembleClassifier": {"nodes_values_as_tensor", "base_values_as_tensor", "class_weights_as_tensor",
                               "classlabels_strings"},
    "TreeEnsembleRegressor": {"nodes_values_as_tensor", "base_values_as_tensor", "target_weights_as_tensor",
                              "classlabels_strings"},
    "LinearClassifier": {"classlabels_strings"},
    "LinearRegressor": {"classlabels_strings"},
    "Imputer": {"imputed_value_int64s", "replaced_value_int64"},
    "ZipMap": {"classlabels_strings"},
    "OneHotEncoder": {"cats_strings"},
}
POST_TRANSFORMS = {"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"}
NODE_MODES = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF"}
TENSOR_TYPES = {1, 6, 7, 8, 9, 11}


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def unsupported_reason(model: onnx.ModelProto) -> str | None:
    """Why the runtime would refuse to load `model`, or None."""
    if not 3 <= model.ir_version <= 10:
        return f"IR version {model.ir_version} (supported 3-10)"
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx", "ai.onnx.ml"):
            return f"opset domain {opset.domain}"
    for init in model.graph.initializer:
        if init.data_type not in TENSOR_TYPES:
            return f"initializer {init.name} of tensor type {init.data_type}"
    for node in model.graph.node:
        domain = "ai.onnx" if node.domain in ("", "ai.onnx") else node.domain
        where = f"{domain}::{node.op_type} (node {node.name or '?'})"
        if node.op_type not in SUPPORTED_OPS.get(domain, set()):
            detail = ", ".join(f"{k}={v}" for k, v in attrs(node).items() if not isinstance(v, (list, bytes)) or len(v) < 4)
            return f"unsupported op {where}" + (f" [{detail}]" if detail else "")
        a = attrs(node)
        for key in REJECTED_ATTRIBUTES.get(node.op_type, ()):
            if key in a:
                return f"{where}: attribute {key} is not supported"
        if "post_transform" in a and text(a["post_transform"]) not in POST_TRANSFORMS:
            return f"{where}: post_transform {text(a['post_transform'])}"
        if node.op_type.startswith("TreeEnsemble"):
            modes = {text(m) for m in a.get("nodes_modes", [])}
            if modes - NODE_MODES:
                return f"{where}: node modes {sorted(modes - NODE_MODES)}"
            if text(a.get("aggregate_function", "SUM")) not in {"SUM", "AVERAGE", "MIN", "MAX"}:
                return f"{where}: aggregate_function {text(a['aggregate_function'])}"
        if node.op_type == "ArgMax" and a.get("select_last_index", 0) != 0:
            return f"{where}: select_last_index=1"
        if node.op_type == "Cast" and a.get("to") not in TENSOR_TYPES:
            return f"{where}: Cast to ONNX type {a.get('to')}"
        if node.op_type == "Concat" and "axis" not in a:
            return f"{where}: Concat without axis"
    return None


# --------------------------------------------------------------------------------------------
# Conditioning: a float32 evaluation of the graph with onnxruntime's semantics and a chosen
# summation order, to find the rows of dense (non-tree) models whose result depends on the
# order (only the ops the fixtures use). Every elementwise op is rounded to float32 exactly as
# IEEE arithmetic does; only sums differ between the orders:
#   "exact"   each sum in float64, rounded once (a perfectly rounded float32 implementation)
#   "forward" float32 accumulation over k = 0, 1, ...
#   "reverse" float32 accumulation over k = K-1, ..., 0

ORDERS = ("exact", "forward", "reverse")


def _sum(terms: np.ndarray, order: str) -> np.ndarray:
    """Sum of float32 `terms` over the last axis in the given order, as float32."""
    if order == "exact":
        return terms.astype(np.float64).sum(axis=-1).astype(F32)
    acc = np.zeros(terms.shape[:-1], F32)
    steps = range(terms.shape[-1]) if order == "forward" else reversed(range(terms.shape[-1]))
    with np.errstate(all="ignore"):
        for p in steps:
            acc = (acc + terms[..., p]).astype(F32)
    return acc


def _matmul(a: np.ndarray, b: np.ndarray, order: str) -> np.ndarray:
    a, b = a.astype(F32), b.astype(F32)
    with np.errstate(all="ignore"):
        products = (a[:, :, None] * b[None, :, :]).astype(F32)  # [m, k, n]
    return _sum(np.swapaxes(products, 1, 2), order)


def _f32(v) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(v, dtype=np.float64).astype(F32)


def evaluate(model: onnx.ModelProto, x: np.ndarray, order: str) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    graph_input = model.graph.input[0]
    values[graph_input.name] = x.astype(helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type))

    def post(scores: np.ndarray, transform: str) -> np.ndarray:
        s = scores.astype(np.float64)
        if transform == "LOGISTIC":
            return _f32(1.0 / (1.0 + np.exp(-s)))
        if transform == "SOFTMAX":
            e = _f32(np.exp(s - s.max(axis=1, keepdims=True)))
            return _f32(e / _sum(e, order)[:, None])
        assert transform == "NONE", transform
        return scores

    for node in model.graph.node:
        a = attrs(node)
        i = [values[n] if n else None for n in node.input]
        op = node.op_type
        with np.errstate(all="ignore"):
            if op in ("Identity", "ZipMap"):
                out = [i[0]]
            elif op == "Cast":
                if a["to"] in (6, 7):
                    out = [i[0].astype(np.int64) if i[0].dtype.kind in "iu" else np.trunc(i[0]).astype(np.int64)]
                else:
                    out = [i[0].astype(np.float64 if a["to"] == 11 else F32)]
            elif op == "MatMul":
                out = [_matmul(i[0], i[1], order)]
            elif op == "Gemm":
                A = i[0].T if a.get("transA", 0) else i[0]
                B = i[1].T if a.get("transB", 0) else i[1]
                y = _f32(F32(a.get("alpha", 1.0)) * _matmul(A, B, order))
                if len(i) > 2 and i[2] is not None:
                    y = _f32(y + _f32(F32(a.get("beta", 1.0)) * i[2].astype(F32)))
                out = [y]
            elif op in ("Add", "Sub", "Mul", "Div"):
                p, q = i[0].astype(F32), i[1].astype(F32)
                out = [_f32({"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](p, q))]
            elif op == "Relu":
                out = [np.maximum(i[0], F32(0))]
            elif op == "Tanh":
                out = [_f32(np.tanh(i[0].astype(np.float64)))]
            elif op == "Sigmoid":
                out = [_f32(1.0 / (1.0 + np.exp(-i[0].astype(np.float64))))]
            elif op == "Softmax":
                out = [post(i[0], "SOFTMAX")]
            elif op == "ArgMax":
                r = np.argmax(i[0], axis=a.get("axis", 0))
                out = [np.expand_dims(r, a.get("axis", 0)) if a.get("keepdims", 1) else r]
            elif op == "ArrayFeatureExtractor":
                idx = np.asarray(i[1]).astype(np.int64)
                out = [np.take(i[0], idx.ravel(), axis=-1) if i[0].ndim > 1 else i[0][idx]]
            elif op == "Gather":
                axis = a.get("axis", 0)
                axis = axis + i[0].ndim if axis < 0 else axis
                idx = np.asarray(i[1]).astype(np.int64)
                idx = np.where(idx < 0, idx + i[0].shape[axis], idx)
                out = [np.take(i[0], idx, axis=axis)]
            elif op == "Reshape":
                shape = [int(d) if d != 0 else i[0].shape[k] for k, d in enumerate(i[1])]
                out = [i[0].reshape(shape)]
            elif op == "Flatten":
                axis = a.get("axis", 1)
                out = [i[0].reshape(int(np.prod(i[0].shape[:axis])), -1)]
            elif op == "Concat":
                out = [np.concatenate([t.astype(F32) for t in i], axis=a["axis"])]
            elif op in ("LinearRegressor", "LinearClassifier"):
                coef = np.array(a["coefficients"], dtype=F32)
                targets = len(a.get("intercepts", [])) or a.get("targets", 1)
                if op == "LinearClassifier" and not a.get("intercepts"):
                    targets = 1 if len(a["classlabels_ints"]) == 2 else len(a["classlabels_ints"])
                scores = _matmul(i[0], coef.reshape(targets, -1).T, order)
                if a.get("intercepts"):
                    scores = _f32(scores + np.array(a["intercepts"], dtype=F32))
                transform = text(a.get("post_transform", "NONE"))
                if op == "LinearRegressor":
                    out = [post(scores, transform)]
                else:
                    labels = np.array(a["classlabels_ints"])
                    if targets == 1:
                        s = scores[:, 0]
                        p = post(scores, transform)[:, 0]
                        probabilities = np.stack([_f32(1 - p), p] if transform != "NONE" else [-s, s], axis=1)
                        out = [np.where(s > 0, labels[1], labels[0]), probabilities]
                    else:
                        out = [labels[np.argmax(scores, axis=1)], post(scores, transform)]
            elif op == "Normalizer":
                v = i[0].astype(F32)
                norm = text(a["norm"])
                if norm == "MAX":  # onnxruntime: max(x), not max(|x|)
                    n = np.nanmax(v, axis=1, keepdims=True)
                    y = _f32(v / np.where(n != 0, n, F32(1)))
                elif norm == "L1":
                    n = _sum(np.abs(v), order)[:, None]
                    y = _f32(v / np.where(n != 0, n, F32(1)))
                else:  # onnxruntime: sign(x) * sqrt(x^2 / sum x^2)
                    squares = _f32(v * v)
                    n = _sum(squares, order)[:, None]
                    y = _f32(np.sign(v) * _f32(np.sqrt(_f32(squares / np.where(n != 0, n, F32(1))))))
                out = [np.where(n != 0, y, v)]
            elif op == "Binarizer":
                out = [(i[0] > F32(a.get("threshold", 0.0))).astype(F32)]
            elif op == "Imputer":
                fill = np.array(a["imputed_value_floats"], dtype=F32)
                v = i[0].astype(F32).copy()
                mask = np.isnan(v)
                v[mask] = np.broadcast_to(fill if fill.size > 1 else fill[0], v.shape)[mask]
                out = [v]
            elif op == "Scaler":
                out = [_f32(_f32(i[0] - np.array(a["offset"], dtype=F32)) * np.array(a["scale"], dtype=F32))]
            elif op == "OneHotEncoder":
                cats = list(a["cats_int64s"])
                codes = np.trunc(i[0]).astype(np.int64) if i[0].dtype.kind == "f" else i[0]
                onehot = np.zeros(codes.shape + (len(cats),), F32)
                for k, c in enumerate(cats):
                    onehot[..., k] = codes == c
                out = [onehot]
            else:
                raise NotImplementedError(f"float32 evaluation of {op}")
        for name, value in zip(node.output, out):
            values[name] = value
    return {o.name: values[o.name] for o in model.graph.output}


def ill_conditioned_rows(model: onnx.ModelProto, x: np.ndarray, expected: dict[str, np.ndarray]) -> dict[int, str]:
    """Rows where the float32 result depends on the summation order by more than a quarter of
    the test tolerance, or where two class scores are nearly tied (see module doc)."""
    evaluations = {order: evaluate(model, x, order) for order in ORDERS}
    bad: dict[int, str] = {}
    labels_present = any(v.dtype.kind in "iu" for v in expected.values())
    for name, want in expected.items():
        w = want.reshape(len(x), -1)
        for order, results in evaluations.items():
            e = np.asarray(results[name]).reshape(len(x), -1)
            if want.dtype.kind in "iu":
                for r in np.nonzero((w != e).any(axis=1))[0]:
                    bad.setdefault(int(r), f"{name}: the label differs with {order} summation")
                continue
            w64, e64 = w.astype(np.float64), e.astype(np.float64)
            tolerance = np.maximum(1e-6, 1e-5 * np.abs(w64))
            with np.errstate(invalid="ignore"):
                off = ~((np.abs(w64 - e64) <= 0.25 * tolerance) | (np.isnan(w64) & np.isnan(e64)))
            for r in np.nonzero(off.any(axis=1))[0]:
                bad.setdefault(int(r), f"{name}: {order} summation differs from onnxruntime by "
                                       f"{np.nanmax(np.abs(w64[r] - e64[r])):.3g}")
        if labels_present and want.dtype.kind == "f" and w.shape[1] >= 2:
            # Label-deciding scores nearly tied: a 1-ulp difference could flip the label.
            top = np.sort(w.astype(np.float64), axis=1)
            gap = top[:, -1] - top[:, -2]
            for r in np.nonzero(gap <= 1e-5 * np.maximum(1.0, np.abs(top[:, -1])))[0]:
                bad.setdefault(int(r), f"{name}: top two scores within {gap[r]:.3g}")
    return bad


# --------------------------------------------------------------------------------------------
# Input rows


@dataclass
class Rows:
    values: list = field(default_factory=list)
    kinds: list = field(default_factory=list)
    dtype: type = F32  # the graph input's element type: float32, or int64 for integer-coded inputs

    def add(self, row, kind: str):
        self.values.append(np.asarray(row, dtype=self.dtype))
        self.kinds.append(kind)


def edge_rows(base: np.ndarray, d: int, trees: bool) -> Rows:
    base = base[~np.isnan(base).any(axis=1)]
    rows = Rows()
    rows.add(np.zeros(d), "zeros")
    rows.add(np.full(d, -0.0), "negative_zeros")
    rows.add(np.full(d, 1e-30), "tiny_1e-30")
    rows.add(np.full(d, 1e6), "large_+1e6")
    rows.add(np.full(d, -1e6), "large_-1e6")
    rows.add(np.where(np.arange(d) % 2 == 0, 1e4, -1e4), "alternating_+-1e4")
    r = base[0].copy()
    r[0] = 1e8
    rows.add(r, "sample_with_feature0_1e8")
    r = base[1].copy()
    r[d - 1] = -1e6
    rows.add(r, "sample_with_last_feature_-1e6")
    rows.add(base[2] * F32(1e5), "sample_times_1e5")
    rows.add(base[3] * F32(-1e4), "sample_times_-1e4")
    if trees:
        rows.add(np.full(d, 3e38), "near_float_max_+3e38")
        rows.add(np.full(d, -3e38), "near_float_max_-3e38")
        rows.add(np.full(d, 1e-40), "subnormal_1e-40")
    return rows


def threshold_rows(thresholds: dict[int, np.ndarray], root: tuple[int, float], base: np.ndarray, d: int, rng) -> Rows:
    """Rows with every split feature exactly at one of its thresholds, 1 ulp above, 1 ulp below,
    and rows moving only the first tree's root feature."""
    rows = Rows()
    up = lambda v: np.nextafter(F32(v), F32(np.inf))  # noqa: E731
    down = lambda v: np.nextafter(F32(v), F32(-np.inf))  # noqa: E731
    for kind, move, count in [("all_features_at_a_threshold", lambda v: v, 4),
                              ("all_features_one_ulp_up_from_a_threshold", up, 2),
                              ("all_features_one_ulp_down_from_a_threshold", down, 2)]:
        for k in range(count):
            row = base[(k + 1) % len(base)].copy()
            for f, ts in thresholds.items():
                row[f] = move(ts[rng.integers(len(ts))])
            rows.add(row, kind)
    f, t = root
    for kind, v in [("root_feature_at_threshold", F32(t)), ("root_feature_one_ulp_up", up(t)),
                    ("root_feature_one_ulp_down", down(t))]:
        row = base[5 % len(base)].copy()
        row[f] = v
        rows.add(row, kind)
    return rows


def nan_rows(base: np.ndarray, d: int, root_feature: int, rng) -> Rows:
    rows = Rows()
    rows.add(np.full(d, np.nan), "all_nan")
    for k in range(3):
        row = base[(k + 7) % len(base)].copy()
        row[rng.random(d) < 0.3] = np.nan
        rows.add(row, "sample_30pct_nan")
    row = base[11 % len(base)].copy()
    row[root_feature] = np.nan
    rows.add(row, "root_feature_nan")
    return rows


def assemble(edges: Rows, pool: np.ndarray, drop: set[int] = frozenset()) -> tuple[np.ndarray, list[str], int]:
    """ROWS rows: the edge rows, then pool samples, skipping the candidates in `drop` (indices
    into edge rows + pool). Returns the rows (samples first, then edge rows, as in the zoo),
    their kinds and the index of the last candidate used."""
    assert pool.dtype == edges.dtype, f"pool {pool.dtype}, edge rows {np.dtype(edges.dtype)}"
    candidates = [(v, kind) for v, kind in zip(edges.values, edges.kinds)]
    candidates += [(v, "sample_with_nan" if np.isnan(v).any() else "sample") for v in pool]
    used = [k for k in range(len(candidates)) if k not in drop][:ROWS]
    assert len(used) == ROWS, f"only {len(used)} rows"
    rows = [candidates[k] for k in used]
    is_sample = [kind in ("sample", "sample_with_nan") for _, kind in rows]
    rows = [r for r, sample in zip(rows, is_sample) if sample] + [r for r, sample in zip(rows, is_sample) if not sample]
    return np.ascontiguousarray(np.stack([v for v, _ in rows]).astype(edges.dtype)), [kind for _, kind in rows], used[-1]


# --------------------------------------------------------------------------------------------
# Thresholds read from the fitted trees


def sklearn_trees(model):
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, BaseDecisionTree):
        return [model]
    estimators = model.estimators_
    return list(np.ravel(estimators))


def thresholds_sklearn(model) -> tuple[list[tuple[int, float]], tuple[int, float]]:
    pairs = []
    trees = sklearn_trees(model)
    for est in trees:
        t = est.tree_
        for f, v in zip(t.feature, t.threshold):
            if f >= 0:
                pairs.append((int(f), float(v)))
    t0 = trees[0].tree_
    return pairs, (int(t0.feature[0]), float(t0.threshold[0]))


def thresholds_xgboost(model) -> tuple[list[tuple[int, float]], tuple[int, float]]:
    pairs, root = [], None

    def visit(node):
        nonlocal root
        if "split" in node:
            f = int(str(node["split"]).lstrip("f"))
            pairs.append((f, float(node["split_condition"])))
            if root is None:
                root = (f, float(node["split_condition"]))
            for child in node.get("children", []):
                visit(child)

    for tree in model.get_booster().get_dump(dump_format="json"):
        visit(json.loads(tree))
    return pairs, root


def thresholds_lightgbm(model) -> tuple[list[tuple[int, float]], tuple[int, float]]:
    pairs, root = [], None

    def visit(node):
        nonlocal root
        if "split_feature" in node:
            pairs.append((int(node["split_feature"]), float(node["threshold"])))
            if root is None:
                root = pairs[-1]
            visit(node["left_child"])
            visit(node["right_child"])

    for tree in model.booster_.dump_model()["tree_info"]:
        visit(tree["tree_structure"])
    return pairs, root


def snap_thresholds(model: onnx.ModelProto, pairs, root) -> tuple[dict[int, np.ndarray], tuple[int, float], dict]:
    """The fitted thresholds as the float32 values the exported TreeEnsemble compares against.
    A double threshold (scikit-learn, LightGBM) becomes a float32 in the export: the nearest one,
    or the one below it (skl2onnx rounds toward -inf so that x <= t keeps scikit-learn's
    decisions); each fitted threshold is matched to the exported value it became."""
    exported: dict[int, set] = {}
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            a = attrs(node)
            for f, v, m in zip(a["nodes_featureids"], a["nodes_values"], a["nodes_modes"]):
                if text(m) != "LEAF":
                    exported.setdefault(int(f), set()).add(F32(v))
    rules: dict[str, int] = {}

    def to_export(f, v):
        v32 = F32(v)
        down = v32 if float(v32) <= v else np.nextafter(v32, F32(-np.inf))
        up = v32 if float(v32) >= v else np.nextafter(v32, F32(np.inf))
        for rule, candidate in (("nearest", v32), ("toward -inf", down), ("toward +inf", up)):
            if candidate in exported.get(f, ()):
                rules[rule] = rules.get(rule, 0) + 1
                return candidate
        raise RuntimeError(f"fitted threshold {v!r} on feature {f} is not in the export")

    by_feature: dict[int, set] = {}
    for f, v in pairs:
        by_feature.setdefault(f, set()).add(to_export(f, v))
    thresholds = {f: np.array(sorted(s), dtype=F32) for f, s in sorted(by_feature.items())}
    root32 = (root[0], float(to_export(*root)))
    info = {"source": "the fitted model's trees", "n_split_nodes": len(pairs),
            "n_distinct_thresholds": int(sum(len(s) for s in thresholds.values())),
            "float32_rounding_in_export": rules, "root_split": {"feature": root32[0], "threshold": root32[1]}}
    return thresholds, root32, info


# --------------------------------------------------------------------------------------------
# Fixture definitions


@dataclass
class Built:
    model: onnx.ModelProto
    description: str
    model_type: str
    task: str
    n_features: int
    edges: Rows
    pool: np.ndarray
    trees: bool = False
    nan: bool = False
    class_labels: list | None = None
    framework_predict: Callable | None = None
    extra: dict = field(default_factory=dict)


def data_classification(rng_seed: int, n_features: int, n_classes: int, n: int = 500):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=n_features, n_informative=max(2, n_features - 2),
                               n_redundant=1 if n_features > 3 else 0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=rng_seed)
    return X.astype(F32), y


def data_regression(rng_seed: int, n_features: int, n: int = 500, targets: int = 1, offset: float = 0.0):
    """`offset` moves the target's mean away from 0, so that the all-zero input rows of linear
    models give a result far from 0 (relative tolerance) rather than a sum that cancels."""
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=n, n_features=n_features, n_informative=n_features - 1, n_targets=targets,
                           noise=5.0, random_state=rng_seed)
    return X.astype(F32), y + offset


def split(X, y):
    return X[:400], y[:400], X[400:]


def with_nan(X: np.ndarray, seed: int, rate: float = 0.06) -> np.ndarray:
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


def skl(model, X, options: dict | None = None) -> onnx.ModelProto:
    from skl2onnx import to_onnx

    return to_onnx(model, X[:1], options=options)


NO_ZIPMAP = {"zipmap": False}


def proba_predict(model):
    return lambda x: {"label": model.predict(x), "probabilities": model.predict_proba(x)}


def value_predict(model):
    return lambda x: {"variable": model.predict(x).reshape(len(x), -1)}


def fx_linear_regression(seed):
    from sklearn.linear_model import LinearRegression

    X, y = data_regression(seed, 11, offset=200.0)
    Xt, yt, pool = split(X, y)
    m = LinearRegression().fit(Xt, yt)
    return Built(skl(m, Xt), "LinearRegression, 11 features", "sklearn.LinearRegression", "regression", 11,
                 edge_rows(pool, 11, False), pool, framework_predict=value_predict(m))


def fx_ridge_two_targets(seed):
    from sklearn.linear_model import Ridge

    X, y = data_regression(seed, 9, targets=2, offset=200.0)
    Xt, yt, pool = split(X, y)
    m = Ridge(alpha=0.5).fit(Xt, yt)
    return Built(skl(m, Xt), "Ridge(alpha=0.5), 9 features, 2 targets (LinearRegressor targets=2)", "sklearn.Ridge",
                 "regression", 9, edge_rows(pool, 9, False), pool, framework_predict=value_predict(m))


def fx_linear_svc_3class(seed):
    from sklearn.svm import LinearSVC

    X, y = data_classification(seed, 8, 3)
    Xt, yt, pool = split(X, y)
    m = LinearSVC(random_state=seed, max_iter=5000).fit(Xt, yt)
    return Built(skl(m, Xt), "LinearSVC (one-vs-rest), 8 features, 3 classes: LinearClassifier post_transform NONE",
                 "sklearn.LinearSVC", "classification", 8, edge_rows(pool, 8, False), pool, class_labels=[0, 1, 2],
                 framework_predict=lambda x: {"label": m.predict(x), "probabilities": m.decision_function(x)})


def fx_linear_svc_binary(seed):
    from sklearn.svm import LinearSVC

    X, y = data_classification(seed, 7, 2)
    Xt, yt, pool = split(X, y)
    m = LinearSVC(random_state=seed, max_iter=5000).fit(Xt, yt)
    return Built(skl(m, Xt), "LinearSVC, 7 features, binary: LinearClassifier NONE (two score columns) then "
                 "ArrayFeatureExtractor picking the positive column with a scalar index", "sklearn.LinearSVC",
                 "classification", 7, edge_rows(pool, 7, False), pool, class_labels=[0, 1],
                 framework_predict=lambda x: {"label": m.predict(x), "probabilities": m.decision_function(x).reshape(-1, 1)})


def fx_logreg_3class_softmax(seed):
    """sklearn's default multi-class LogisticRegression as skl2onnx exports it: LinearClassifier
    with multi_class=1 (an attribute onnxruntime ignores; asserted here by comparing with the
    same graph patched to 0), SOFTMAX, and the L1 Normalizer after it."""
    from sklearn.linear_model import LogisticRegression

    X, y = data_classification(seed, 9, 3)
    Xt, yt, pool = split(X, y)
    m = LogisticRegression(max_iter=1000).fit(Xt, yt)
    original = skl(m, Xt, NO_ZIPMAP)
    patched = onnx.ModelProto()
    patched.CopyFrom(original)
    for node in patched.graph.node:
        for a in node.attribute:
            if node.op_type == "LinearClassifier" and a.name == "multi_class":
                a.i = 0
    check = np.concatenate([pool, np.zeros((1, 9), F32)])
    a, b = run_ort(original.SerializeToString(), check), run_ort(patched.SerializeToString(), check)
    assert all(np.array_equal(a[k], b[k]) for k in a), "onnxruntime no longer ignores multi_class"
    return Built(original, "LogisticRegression (lbfgs, multinomial), 9 features, 3 classes: LinearClassifier "
                 "multi_class=1 SOFTMAX + Normalizer L1 (onnxruntime ignores multi_class)",
                 "sklearn.LogisticRegression", "classification", 9, edge_rows(pool, 9, False), pool,
                 class_labels=[0, 1, 2], framework_predict=proba_predict(m))


def fx_sgd_3class(seed):
    from sklearn.linear_model import SGDClassifier

    X, y = data_classification(seed, 9, 3)
    Xt, yt, pool = split(X, y)
    m = SGDClassifier(loss="hinge", random_state=seed, max_iter=2000, tol=1e-4).fit(Xt, yt)
    return Built(skl(m, Xt, NO_ZIPMAP), "SGDClassifier(hinge), 9 features, 3 classes: MatMul + Add (fused dense "
                 "layer, k=9, n=3), ArgMax, ArrayFeatureExtractor on int32 classes, Reshape, Cast", "sklearn.SGDClassifier",
                 "classification", 9, edge_rows(pool, 9, False), pool, class_labels=[0, 1, 2],
                 framework_predict=lambda x: {"label": m.predict(x), "probabilities": m.decision_function(x)})


def fx_mlp_regressor(activation):
    def build(seed):
        from sklearn.neural_network import MLPRegressor

        X, y = data_regression(seed, 9)
        y = y / np.std(y)
        Xt, yt, pool = split(X, y)
        m = MLPRegressor(hidden_layer_sizes=(19, 7), activation=activation, max_iter=300, random_state=seed).fit(Xt, yt)
        op = "Tanh" if activation == "tanh" else "Sigmoid"
        return Built(skl(m, Xt), f"MLPRegressor(hidden=(19, 7), {activation}), 9 features: MatMul + Add (fused, no Relu) "
                     f"+ {op}, twice, then the linear output layer and Reshape", "sklearn.MLPRegressor", "regression", 9,
                     edge_rows(pool, 9, False), pool, framework_predict=value_predict(m))
    return build


def fx_mlp_binary_tanh(seed):
    from sklearn.neural_network import MLPClassifier

    X, y = data_classification(seed, 7, 2)
    Xt, yt, pool = split(X, y)
    m = MLPClassifier(hidden_layer_sizes=(11,), activation="tanh", max_iter=400, random_state=seed).fit(Xt, yt)
    return Built(skl(m, Xt, NO_ZIPMAP), "MLPClassifier(hidden=(11,), tanh), 7 features, binary: Sigmoid output, "
                 "Sub from a scalar, Concat, ArgMax, ArrayFeatureExtractor, Reshape, Cast", "sklearn.MLPClassifier",
                 "classification", 7,
                 edge_rows(pool, 7, False), pool, class_labels=[0, 1], framework_predict=proba_predict(m))


def fx_impute_l2_binarize_logreg(seed):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer, Normalizer

    X, y = data_classification(seed, 8, 2)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = make_pipeline(SimpleImputer(strategy="mean"), Normalizer("l2"), Binarizer(threshold=0.05),
                      LogisticRegression(max_iter=1000)).fit(Xt, yt)
    edges = edge_rows(pool, 8, False)
    nans = nan_rows(pool, 8, 0, np.random.default_rng(seed))
    edges.values += nans.values
    edges.kinds += nans.kinds
    return Built(skl(m, Xt, NO_ZIPMAP), "SimpleImputer(mean) -> Normalizer(l2) -> Binarizer(0.05) -> "
                 "LogisticRegression, 8 features, binary, trained with 6% NaN", "sklearn.Pipeline", "classification", 8,
                 edges, pool, nan=True,
                 class_labels=[0, 1], framework_predict=proba_predict(m))


def fx_impute_l1_scaler_ridge(seed):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    X, y = data_regression(seed, 10, offset=200.0)
    Xn = with_nan(X, seed + 1)
    Xt, yt, pool = split(Xn, y)
    m = make_pipeline(SimpleImputer(strategy="median"), Normalizer("l1"), StandardScaler(), Ridge()).fit(Xt, yt)
    edges = edge_rows(pool, 10, False)
    nans = nan_rows(pool, 10, 0, np.random.default_rng(seed))
    edges.values += nans.values
    edges.kinds += nans.kinds
    built = Built(skl(m, Xt), "SimpleImputer(median) -> Normalizer(l1) -> StandardScaler -> Ridge, 10 features, trained "
                  "with 6% NaN", "sklearn.Pipeline", "regression", 10, edges, pool, nan=True,
                  framework_predict=value_predict(m))
    built.extra["framework_note"] = ("scikit-learn's Normalizer leaves rows whose norm is below 10 eps unscaled (the "
                                      "1e-30 row); the ONNX Normalizer divides them: onnxruntime is the reference")
    return built


def fx_normalizer_max_linreg(seed):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    X, y = data_regression(seed, 6, offset=200.0)
    X = X + F32(0.5)  # mostly positive rows: sklearn's max(|x|) and ONNX's max(x) then mostly agree
    Xt, yt, pool = split(X, y)
    m = make_pipeline(Normalizer("max"), LinearRegression()).fit(Xt, yt)
    return Built(skl(m, Xt), "Normalizer(max) -> LinearRegression, 6 features (ONNX Normalizer MAX divides by max(x), "
                 "not max(|x|) as scikit-learn: onnxruntime is the reference)", "sklearn.Pipeline", "regression", 6,
                 edge_rows(pool, 6, False), pool)


def tree_fixture(model, onnx_model, thresholds, description, model_type, task, d, pool, seed, nan=False, class_labels=None,
                 framework_predict=None):
    pairs, root = thresholds
    ts, root32, info = snap_thresholds(onnx_model, pairs, root)
    rng = np.random.default_rng(seed)
    clean = pool[~np.isnan(pool).any(axis=1)]
    edges = edge_rows(clean, d, True)
    t_rows = threshold_rows(ts, root32, clean, d, rng)
    edges.values += t_rows.values
    edges.kinds += t_rows.kinds
    if nan:
        n_rows = nan_rows(clean, d, root32[0], rng)
        edges.values += n_rows.values
        edges.kinds += n_rows.kinds
    return Built(onnx_model, description, model_type, task, d, edges, pool, trees=True, nan=nan, class_labels=class_labels,
                 framework_predict=framework_predict, extra={"thresholds": info})


def fx_rf_regressor(seed):
    from sklearn.ensemble import RandomForestRegressor

    X, y = data_regression(seed, 8)
    Xt, yt, pool = split(X, y)
    m = RandomForestRegressor(n_estimators=12, max_depth=5, random_state=seed).fit(Xt, yt)
    return tree_fixture(m, skl(m, Xt), thresholds_sklearn(m), "RandomForestRegressor(n_estimators=12, max_depth=5), 8 features",
                        "sklearn.RandomForestRegressor", "regression", 8, pool, seed, framework_predict=value_predict(m))


def fx_extratrees_3class_zipmap(seed):
    from sklearn.ensemble import ExtraTreesClassifier

    X, y = data_classification(seed, 8, 3)
    Xt, yt, pool = split(X, y)
    m = ExtraTreesClassifier(n_estimators=10, max_depth=5, random_state=seed).fit(Xt, yt)
    return tree_fixture(m, skl(m, Xt), thresholds_sklearn(m),
                        "ExtraTreesClassifier(n_estimators=10, max_depth=5), 8 features, 3 classes; ZipMap left ON "
                        "(the one extra fixture that keeps it; expected output stored dense)",
                        "sklearn.ExtraTreesClassifier", "classification", 8, pool, seed, class_labels=[0, 1, 2],
                        framework_predict=lambda x: {"output_label": m.predict(x), "output_probability": m.predict_proba(x)})


def fx_gbc_3class(seed):
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = data_classification(seed, 8, 3)
    Xt, yt, pool = split(X, y)
    m = GradientBoostingClassifier(n_estimators=15, max_depth=3, learning_rate=0.2, random_state=seed).fit(Xt, yt)
    return tree_fixture(m, skl(m, Xt, NO_ZIPMAP), thresholds_sklearn(m),
                        "GradientBoostingClassifier(n_estimators=15, max_depth=3), 8 features, 3 classes: "
                        "TreeEnsembleClassifier SOFTMAX with base values", "sklearn.GradientBoostingClassifier",
                        "classification", 8, pool, seed, class_labels=[0, 1, 2], framework_predict=proba_predict(m))


def deterministic_name(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """onnxmltools names the graph with a random uuid: the only nondeterministic byte."""
    model.graph.name = name
    return model


def xgb_convert(model, d):
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    return deterministic_name(convert_xgboost(model, initial_types=[("input", FloatTensorType([None, d]))]), "xgboost")


def lgbm_convert(model, d, zipmap=False):
    from onnxmltools.convert import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    kw = {} if not hasattr(model, "predict_proba") else {"zipmap": zipmap}
    return deterministic_name(convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, d]))], **kw), "lightgbm")


def fx_xgb_3class(seed):
    import xgboost as xgb

    X, y = data_classification(seed, 8, 3)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = xgb.XGBClassifier(n_estimators=10, max_depth=3, learning_rate=0.3, tree_method="hist", n_jobs=1,
                          random_state=seed).fit(Xt, yt)
    return tree_fixture(m, xgb_convert(m, 8), thresholds_xgboost(m),
                        "XGBClassifier(n_estimators=10, max_depth=3, hist), multi:softprob, 8 features, 3 classes, "
                        "trained with 6% NaN; via onnxmltools", "xgboost.XGBClassifier", "classification", 8, pool, seed,
                        nan=True, class_labels=[0, 1, 2], framework_predict=proba_predict(m))


def fx_xgb_binary_softprob(seed):
    import xgboost as xgb

    X, y = data_classification(seed, 8, 2)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = xgb.XGBClassifier(n_estimators=8, max_depth=3, learning_rate=0.3, tree_method="hist", n_jobs=1,
                          objective="multi:softprob", num_class=2, random_state=seed).fit(Xt, yt)
    built = tree_fixture(m, xgb_convert(m, 8), thresholds_xgboost(m),
                         "XGBClassifier(objective=multi:softprob, num_class=2, n_estimators=8, max_depth=3), 8 features, "
                         "trained with 6% NaN; via onnxmltools: a two-class TreeEnsembleClassifier with leaves for both "
                         "classes, two base values and SOFTMAX (onnxruntime's binary rules apply, so its probabilities "
                         "differ from xgboost's: onnxruntime is the reference)", "xgboost.XGBClassifier",
                         "classification", 8, pool, seed, nan=True, class_labels=[0, 1],
                         framework_predict=lambda x: {"label": np.argmax(m.predict_proba(x), axis=1),
                                                      "probabilities": m.predict_proba(x)})
    built.extra["framework_note"] = ("onnxruntime applies its two-class rules to this export (two base values, leaves for both "
                                      "classes): its labels and probabilities are not xgboost's (framework_check). The runtime "
                                      "follows onnxruntime, so this fixture pins onnxruntime's behaviour")
    return built


def fx_xgb_regressor(seed):
    import xgboost as xgb

    X, y = data_regression(seed, 8)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = xgb.XGBRegressor(n_estimators=20, max_depth=3, learning_rate=0.3, tree_method="hist", n_jobs=1,
                         random_state=seed).fit(Xt, yt)
    return tree_fixture(m, xgb_convert(m, 8), thresholds_xgboost(m),
                        "XGBRegressor(n_estimators=20, max_depth=3, hist), 8 features, trained with 6% NaN; via onnxmltools",
                        "xgboost.XGBRegressor", "regression", 8, pool, seed, nan=True, framework_predict=value_predict(m))


def lgbm_params(seed):
    return dict(n_estimators=15, num_leaves=8, learning_rate=0.2, min_child_samples=10, random_state=seed, n_jobs=1,
                deterministic=True, force_row_wise=True, verbose=-1)


LGBM_NOTE = ("LightGBM compares features with double thresholds; the ONNX export rounds them to float32, so rows "
             "exactly at a threshold can take the other branch in LightGBM itself (framework_check): onnxruntime is "
             "the reference")


def fx_lgbm_binary(seed):
    import lightgbm as lgb

    X, y = data_classification(seed, 8, 2)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = lgb.LGBMClassifier(**lgbm_params(seed)).fit(Xt, yt)
    built = tree_fixture(m, lgbm_convert(m, 8), thresholds_lightgbm(m),
                         "LGBMClassifier(n_estimators=15, num_leaves=8), 8 features, binary, trained with 6% NaN; via "
                         "onnxmltools: TreeEnsembleClassifier LOGISTIC, Identity, Cast, Mul", "lightgbm.LGBMClassifier",
                         "classification", 8, pool, seed, nan=True, class_labels=[0, 1], framework_predict=proba_predict(m))
    built.extra["framework_note"] = LGBM_NOTE
    return built


def fx_lgbm_regressor(seed):
    import lightgbm as lgb

    X, y = data_regression(seed, 8)
    Xn = with_nan(X, seed)
    Xt, yt, pool = split(Xn, y)
    m = lgb.LGBMRegressor(**lgbm_params(seed)).fit(Xt, yt)
    built = tree_fixture(m, lgbm_convert(m, 8), thresholds_lightgbm(m),
                         "LGBMRegressor(n_estimators=15, num_leaves=8), 8 features, trained with 6% NaN; via onnxmltools",
                         "lightgbm.LGBMRegressor", "regression", 8, pool, seed, nan=True, framework_predict=value_predict(m))
    built.extra["framework_note"] = LGBM_NOTE
    return built


# Hand-built graphs: no standard scikit-learn converter emits Gemm with only supported ops
# (KMeans and GaussianMixture use Gemm next to ReduceSumSquare and friends); onehot_handbuilt
# feeds OneHotEncoder float and fractional codes directly (skl2onnx's export picks each column
# with Gather: see onehot_int_pipeline and column_transformer_churn below).


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def make_model(nodes, inputs, outputs, initializers, name):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)],
                              producer_name="tools/gen_fixtures.py", ir_version=8)
    onnx.checker.check_model(model)
    return model


def fx_dense_gemm_handbuilt(seed):
    rng = np.random.default_rng(seed)
    k = 13
    w = lambda *shape: (rng.standard_normal(shape) / np.sqrt(shape[-1] if len(shape) > 1 else 1)).astype(F32)  # noqa: E731
    X = rng.standard_normal((400, k)).astype(F32) * F32(3) + F32(1)
    mu, sd = X.mean(axis=0).astype(F32), X.std(axis=0).astype(F32)
    inits = [
        init("mu", mu), init("sd", sd), init("gain", (1 + 0.1 * rng.standard_normal((1, k))).astype(F32)),
        init("W1", w(37, k)), init("b1", (0.1 * rng.standard_normal(37)).astype(F32)),        # Gemm transB=1 -> [N,37]
        init("W2", w(37, 21) * F32(0.8)), init("b2", (0.1 * rng.standard_normal(21)).astype(F32)),  # MatMul+Add+Relu
        init("W3", w(5, 21)), init("c3", np.array([0.25], F32)),                              # Gemm, scalar C: not fused
        init("W4", w(21, 6)),                                                                 # Gemm without C
        init("W5", w(k, 3)), init("b5", (0.1 * rng.standard_normal((1, 3))).astype(F32)),     # Add(bias, MatMul)
        init("shape_3d", np.array([-1, 2, 7], np.int64)), init("scale", (0.5 + rng.random(14)).astype(F32)),
        init("W6", w(21, 2) * F32(3)),                                                        # MatMul n=2 -> Softmax
    ]
    N = helper.make_node
    nodes = [
        N("Sub", ["x", "mu"], ["centered"], name="center"),
        N("Div", ["centered", "sd"], ["standardized"], name="standardize"),
        N("Mul", ["standardized", "gain"], ["xm"], name="gain"),
        N("Gemm", ["xm", "W1", "b1"], ["h1"], name="dense1_gemm", transB=1, alpha=0.75, beta=1.25),
        N("Relu", ["h1"], ["r1"], name="dense1_relu"),
        N("MatMul", ["r1", "W2"], ["h2"], name="dense2_matmul"),
        N("Add", ["h2", "b2"], ["a2"], name="dense2_bias"),
        N("Relu", ["a2"], ["hidden"], name="dense2_relu"),
        N("Gemm", ["hidden", "W3", "c3"], ["h3"], name="gemm_scalar_c", transB=1, alpha=1.5, beta=-0.5),
        N("Gemm", ["hidden", "W4"], ["h4"], name="gemm_no_c"),
        N("MatMul", ["xm", "W5"], ["h5"], name="skip_matmul"),
        N("Add", ["b5", "h5"], ["a5"], name="skip_bias_first"),
        N("Concat", ["h3", "h4", "a5"], ["cat"], name="concat", axis=1),
        N("Reshape", ["cat", "shape_3d"], ["cube"], name="reshape_3d"),
        N("Flatten", ["cube"], ["flat"], name="flatten", axis=1),
        N("Cast", ["flat"], ["flat64"], name="to_double", to=TensorProto.DOUBLE),
        N("Cast", ["flat64"], ["flat32"], name="to_float", to=TensorProto.FLOAT),
        N("Mul", ["flat32", "scale"], ["y"], name="scale"),
        N("MatMul", ["hidden", "W6"], ["pair_logits"], name="pair_matmul"),
        N("Softmax", ["pair_logits"], ["pair_probabilities"], name="pair_softmax", axis=-1),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 14]),
                        helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [None, 21]),
                        helper.make_tensor_value_info("pair_probabilities", TensorProto.FLOAT, [None, 2])], inits, "dense_gemm")
    pool = (rng.standard_normal((300, k)).astype(F32) * F32(3) + F32(1))
    return Built(model, "hand-built (onnx.helper): Sub/Div/Mul standardisation; Gemm(transB=1, alpha=0.75, beta=1.25, "
                 "C [37]) + Relu with k=13, n=37; MatMul + Add + Relu n=21; Gemm(transB=1, scalar C, alpha 1.5, beta -0.5) "
                 "(not fusable); Gemm without C n=6; MatMul + Add(bias first) n=3; Concat, Reshape [-1,2,7], Flatten, "
                 "Cast to double and back, Mul; MatMul n=2 + Softmax (the two-class softmax path)", "handbuilt.dense",
                 "regression", k, edge_rows(pool, k, False), pool,
                 extra={"hand_built": True})


def fx_onehot_handbuilt(seed):
    rng = np.random.default_rng(seed)
    d = 4  # columns: 0 category code, 1 numeric, 2 category code, 3 numeric
    inits = [
        init("col0", np.array([0], np.int64)), init("col2", np.array([2], np.int64)),
        init("numeric", np.array([1, 3], np.int64)), init("shape_2d", np.array([-1, 3], np.int64)),
    ]
    coef = (rng.standard_normal(2 * 9)).astype(F32)
    N = helper.make_node
    nodes = [
        N("ArrayFeatureExtractor", ["x", "col0"], ["c0"], domain="ai.onnx.ml", name="pick_col0"),
        N("Cast", ["c0"], ["c0_int"], name="col0_to_int64", to=TensorProto.INT64),
        N("OneHotEncoder", ["c0_int"], ["c0_onehot"], domain="ai.onnx.ml", name="onehot_col0", cats_int64s=[0, 1, 2, 3], zeros=1),
        N("Flatten", ["c0_onehot"], ["c0_flat"], name="flatten_col0", axis=1),
        N("ArrayFeatureExtractor", ["x", "col2"], ["c2"], domain="ai.onnx.ml", name="pick_col2"),
        N("OneHotEncoder", ["c2"], ["c2_onehot"], domain="ai.onnx.ml", name="onehot_col2_float", cats_int64s=[1, 2, 5], zeros=1),
        N("Reshape", ["c2_onehot", "shape_2d"], ["c2_flat"], name="reshape_col2"),
        N("ArrayFeatureExtractor", ["x", "numeric"], ["num"], domain="ai.onnx.ml", name="pick_numeric"),
        N("Scaler", ["num"], ["num_scaled"], domain="ai.onnx.ml", name="scale_numeric", offset=[0.5, -1.0], scale=[2.0, 0.25]),
        N("Concat", ["c0_flat", "c2_flat", "num_scaled"], ["features"], name="concat", axis=1),
        N("LinearRegressor", ["features"], ["variable"], domain="ai.onnx.ml", name="linear", coefficients=coef.tolist(),
          intercepts=[0.5, -0.25], targets=2),
    ]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, d])],
                       [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2]),
                        helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 9])], inits, "onehot")
    codes0 = rng.integers(0, 4, 300)
    codes2 = rng.choice([1, 2, 5], 300)
    pool = np.stack([codes0, rng.standard_normal(300) * 2, codes2, rng.standard_normal(300) * 5], axis=1).astype(F32)
    edges = Rows()
    # Category columns take codes, unknown codes, fractions (Cast and the float OneHotEncoder
    # truncate toward zero) and -0.0; never NaN or values beyond int64 (casting those is
    # undefined in onnxruntime).
    for c0, c2, kind in [(0, 1, "codes_low"), (3, 5, "codes_high"), (-0.0, -0.0, "negative_zero_codes"),
                         (-1, 0, "unknown_codes_-1_0"), (4, 3, "unknown_codes_4_3"), (7, 6, "unknown_codes_7_6"),
                         (2.7, 2.7, "fractional_codes_2.7"), (3.999, 5.5, "fractional_codes_3.999_5.5"),
                         (-0.5, 1.25, "fractional_codes_-0.5_1.25"), (1e6, -1e6, "large_codes_+-1e6")]:
        edges.add([c0, 1.5, c2, -2.0], kind)
    edges.add([1, 0.0, 2, 0.0], "numeric_zeros")
    edges.add([1, -0.0, 2, -0.0], "numeric_negative_zeros")
    edges.add([2, 1e-30, 5, 1e-30], "numeric_tiny_1e-30")
    edges.add([0, 1e6, 1, -1e6], "numeric_large_+-1e6")
    edges.add([3, 1e8, 2, 1e4], "numeric_1e8")
    return Built(model, "hand-built (onnx.helper): ArrayFeatureExtractor column picks, Cast to int64 + OneHotEncoder "
                 "(cats 0-3), OneHotEncoder on a float column (cats 1,2,5), Flatten / Reshape of the [N,1,C] encodings, "
                 "Scaler on the numeric columns, Concat, LinearRegressor targets=2; unknown categories give zero rows",
                 "handbuilt.onehot", "regression", d, edges, pool, extra={"hand_built": True})


# Integer-coded categorical columns, the way churn-style tabular data is usually modelled:
# skl2onnx's OneHotEncoder export picks each column with Gather(axis=1), casts it to int64 and
# one-hot encodes it (zeros=1: unknown categories give a zero row, like handle_unknown="ignore").

CHURN_NOTE = ("skl2onnx casts a float category column to int64 before OneHotEncoder, truncating toward zero: a "
              "fractional or tiny code (2.7, -0.5, 1e-30) becomes a known category in the export, while scikit-learn "
              "treats it as unknown (framework_check): onnxruntime is the reference")


def churn_labels(rng, logit: np.ndarray) -> np.ndarray:
    return (rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def fx_onehot_int_pipeline(seed):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import Int64TensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    n, d = 500, 4
    # Codes as they come out of a database: contract 0-2, payment method 1-4 (0 is no code), region
    # with -1 for "not recorded" and sparse codes, plan tier 0-5.
    levels = [np.array([0, 1, 2]), np.array([1, 2, 3, 4]), np.array([-1, 0, 3, 7, 12]), np.arange(6)]
    weights = [[0.55, 0.25, 0.2], None, [0.1, 0.3, 0.25, 0.2, 0.15], None]
    X = np.stack([rng.choice(lv, n, p=w) for lv, w in zip(levels, weights)], axis=1).astype(np.int64)
    effects = [np.array([1.2, -0.3, -1.4]), np.array([0.8, -0.2, -0.4, 0.1]), np.array([0.5, -0.2, 0.3, -0.6, 0.1]),
               np.linspace(-0.6, 0.6, 6)]
    logit = sum(e[np.searchsorted(lv, X[:, c])] for c, (lv, e) in enumerate(zip(levels, effects))) - 0.3
    y = churn_labels(rng, logit)
    Xt, yt, pool = split(X, y)
    m = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=1000)).fit(Xt, yt)
    # A fixed graph name (convert_sklearn defaults to a random uuid; to_onnx, as in skl(), uses this one).
    model = convert_sklearn(m, "ONNX(Pipeline)", initial_types=[("input", Int64TensorType([None, d]))],
                            options={id(m.steps[-1][1]): NO_ZIPMAP})
    big = np.iinfo(np.int64)
    edges = Rows(dtype=np.int64)
    for row, kind in [([0, 0, 0, 0], "zeros"), ([0, 1, -1, 0], "lowest_known_codes"),
                      ([2, 4, 12, 5], "highest_known_codes"), ([-1, -1, -1, -1], "all_-1_known_only_in_region"),
                      ([3, 0, 1, 6], "unknown_in_every_column"), ([3, 2, 3, 1], "unknown_contract_3"),
                      ([1, 0, 7, 2], "unknown_payment_0"), ([1, 5, 7, 2], "unknown_payment_5"),
                      ([0, 3, 5, 4], "unknown_region_5"), ([2, 1, 0, 9], "unknown_tier_9"),
                      ([-2, -7, -100, -3], "negative_unknown_codes"),
                      ([1_000_000, -1_000_000, 99, 1 << 40], "large_unknown_codes"),
                      ([big.max, big.min, big.max, big.min], "int64_extremes"),
                      ([big.min, 4, big.max, 3], "int64_extremes_beside_known_codes")]:
        edges.add(row, kind)
    return Built(model, "make_pipeline(OneHotEncoder(handle_unknown=ignore), LogisticRegression) on 4 int64-coded "
                 "categorical columns (3-6 categories; -1 and 0 are trained codes in some columns), exported with "
                 "Int64TensorType: Gather(axis=1) per column, Cast to int64, OneHotEncoder, Concat(axis=-1) of the "
                 "[N,1,C] encodings, Reshape, LinearClassifier LOGISTIC; rows with unknown, negative and int64-extreme "
                 "codes", "sklearn.Pipeline", "classification", d, edges, pool, class_labels=[0, 1],
                 framework_predict=proba_predict(m))


def fx_column_transformer_churn(seed):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    n, d = 500, 8
    tenure = rng.integers(0, 73, n)
    contract = rng.choice(3, n, p=[0.55, 0.25, 0.2])
    monthly = np.round(rng.uniform(18, 120, n), 2)
    total = np.round(tenure * monthly * rng.uniform(0.9, 1.1, n), 2)
    region = rng.integers(0, 50, n)  # an id column the ColumnTransformer drops
    payment = rng.choice(4, n)
    calls = rng.poisson(1.5, n)
    senior = (rng.random(n) < 0.16).astype(np.int64)
    X = np.stack([tenure, contract, monthly, total, region, payment, calls, senior], axis=1).astype(F32)
    logit = (-0.04 * tenure + np.array([1.0, -0.5, -1.5])[contract] + 0.02 * (monthly - 70) + 0.45 * calls
             + np.array([0.4, -0.1, -0.3, 0.0])[payment] + 0.4 * senior - 0.5)
    y = churn_labels(rng, logit)
    Xt, yt, pool = split(X, y)
    numeric, categorical = [0, 2, 3, 6], [1, 5, 7]
    ct = ColumnTransformer([("numeric", StandardScaler(), numeric),
                            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)])
    m = make_pipeline(ct, LogisticRegression(max_iter=1000)).fit(Xt, yt)
    # A fixed graph name (convert_sklearn defaults to a random uuid; to_onnx, as in skl(), uses this one).
    model = convert_sklearn(m, "ONNX(Pipeline)", initial_types=[("input", FloatTensorType([None, d]))],
                            options={id(m.steps[-1][1]): NO_ZIPMAP})
    edges = edge_rows(pool, d, False)

    # Held-out samples with the category columns (and some numeric ones) replaced.
    for k, (codes, numeric_values, kind) in enumerate([
            ([3, 4, 2], {}, "unknown_codes_3_4_2"),
            ([-1, -1, -1], {}, "negative_codes_-1"),
            ([-0.0, -0.0, -0.0], {}, "negative_zero_codes"),
            ([2.7, 3.999, 0.5], {}, "fractional_codes_2.7_3.999_0.5"),
            ([-0.5, -0.999, -0.25], {}, "fractional_negative_codes_truncate_to_0"),
            ([1e6, -1e6, 1e9], {}, "large_codes_1e6_-1e6_1e9"),
            ([0, 3, 1], {0: 0.0, 3: 0.0}, "new_customer_tenure_0"),
            ([2, 0, 0], {0: 72.0, 3: 8640.0}, "long_tenure_known_codes"),
            ([1, 2, 0], {0: 1e6, 2: -1e6, 3: 1e6, 6: -1e6}, "numeric_large_+-1e6_known_codes")]):
        row = pool[k].copy()
        row[categorical] = codes
        for column, value in numeric_values.items():
            row[column] = value
        edges.add(row, kind)
    built = Built(model, "make_pipeline(ColumnTransformer([StandardScaler on numeric columns 0,2,3,6; "
                  "OneHotEncoder(handle_unknown=ignore) on integer-valued columns 1,5,7; column 4 dropped]), "
                  "LogisticRegression), float32 input (FloatTensorType): ArrayFeatureExtractor per group, Scaler, "
                  "Gather(axis=1) + Cast to int64 + OneHotEncoder per category column, Concat(axis=-1), Reshape, "
                  "Concat(axis=1), LinearClassifier LOGISTIC; rows with unknown, negative, -0 and fractional codes",
                  "sklearn.Pipeline", "classification", d, edges, pool, class_labels=[0, 1],
                  framework_predict=proba_predict(m))
    built.extra["framework_note"] = CHURN_NOTE
    return built


FIXTURES: dict[str, tuple[Callable, str]] = {
    # name: (builder, behaviour tested)
    "linear_regression": (fx_linear_regression, "LinearRegressor"),
    "ridge_two_targets": (fx_ridge_two_targets, "LinearRegressor targets=2"),
    "linear_svc_3class": (fx_linear_svc_3class, "LinearClassifier NONE, 3 classes"),
    "linear_svc_binary": (fx_linear_svc_binary, "LinearClassifier NONE binary + ArrayFeatureExtractor"),
    "logreg_3class_softmax": (fx_logreg_3class_softmax, "LinearClassifier SOFTMAX + Normalizer L1"),
    "sgd_3class": (fx_sgd_3class, "MatMul+Add fused, ArgMax, ArrayFeatureExtractor, Reshape, Cast"),
    "mlp_regressor_tanh": (fx_mlp_regressor("tanh"), "MatMul+Add fused + Tanh"),
    "mlp_regressor_logistic": (fx_mlp_regressor("logistic"), "MatMul+Add fused + Sigmoid"),
    "mlp_binary_tanh": (fx_mlp_binary_tanh, "Sigmoid, Sub, Concat, ArgMax"),
    "impute_l2_binarize_logreg": (fx_impute_l2_binarize_logreg, "Imputer, Normalizer L2, Binarizer, LinearClassifier"),
    "impute_l1_scaler_ridge": (fx_impute_l1_scaler_ridge, "Imputer, Normalizer L1, Scaler, LinearRegressor"),
    "normalizer_max_linreg": (fx_normalizer_max_linreg, "Normalizer MAX, LinearRegressor"),
    "rf_regressor": (fx_rf_regressor, "TreeEnsembleRegressor BRANCH_LEQ (averaged)"),
    "extratrees_3class_zipmap": (fx_extratrees_3class_zipmap, "TreeEnsembleClassifier 3 classes + ZipMap"),
    "gbc_3class": (fx_gbc_3class, "TreeEnsembleClassifier SOFTMAX + base values"),
    "xgb_3class": (fx_xgb_3class, "TreeEnsembleClassifier BRANCH_LT SOFTMAX, NaN"),
    "xgb_binary_softprob": (fx_xgb_binary_softprob, "TreeEnsembleClassifier 2 classes, 2 base values, SOFTMAX"),
    "xgb_regressor": (fx_xgb_regressor, "TreeEnsembleRegressor BRANCH_LT, NaN"),
    "lgbm_binary": (fx_lgbm_binary, "TreeEnsembleClassifier LOGISTIC, NaN, Cast, Mul"),
    "lgbm_regressor": (fx_lgbm_regressor, "TreeEnsembleRegressor BRANCH_LEQ, NaN"),
    "dense_gemm_handbuilt": (fx_dense_gemm_handbuilt, "Gemm/MatMul dense layers on odd shapes + tensor ops"),
    "onehot_handbuilt": (fx_onehot_handbuilt, "OneHotEncoder, ArrayFeatureExtractor, Scaler"),
    "onehot_int_pipeline": (fx_onehot_int_pipeline, "int64 input: Gather, OneHotEncoder (unknown, negative codes), "
                            "LinearClassifier LOGISTIC"),
    "column_transformer_churn": (fx_column_transformer_churn, "ColumnTransformer: ArrayFeatureExtractor, Scaler, "
                                 "Gather + Cast + OneHotEncoder, Concat"),
}


# Exports that the runtime cannot load: built only to report why (never written).
def probe_unsupported(seed) -> dict[str, str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    def export(encoder, x, tensor_type):
        pipe = make_pipeline(encoder, LogisticRegression()).fit(x, codes[:, 0] % 2)
        return convert_sklearn(pipe, initial_types=[("input", tensor_type([None, 3]))],
                               options={id(pipe.steps[-1][1]): {"zipmap": False}})

    found = {}
    codes = np.random.default_rng(seed).integers(0, 4, (200, 3)).astype(np.int64)
    # (OneHotEncoder on integer codes is covered: onehot_int_pipeline, column_transformer_churn.)
    found["OneHotEncoder on string categories (+ LogisticRegression)"] = unsupported_reason(
        export(OneHotEncoder(handle_unknown="ignore"), codes.astype(str).astype(object), StringTensorType))
    found["OrdinalEncoder(handle_unknown=use_encoded_value) on integer codes (+ LogisticRegression)"] = unsupported_reason(
        export(OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), codes, Int64TensorType))
    return found


# --------------------------------------------------------------------------------------------
# Writing


def ops_distinct(model: onnx.ModelProto) -> list[str]:
    return sorted({f"{'ai.onnx' if n.domain in ('', 'ai.onnx') else n.domain}::{n.op_type}" for n in model.graph.node})


def node_summary(model: onnx.ModelProto) -> list[dict]:
    out = []
    for n in model.graph.node:
        a = {}
        for k, v in attrs(n).items():
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, list) and len(v) > 8:
                v = f"<{len(v)} values>"
            elif isinstance(v, list):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
            elif isinstance(v, float) and np.isnan(v):
                v = "NaN"
            elif isinstance(v, onnx.TensorProto):
                v = "<tensor>"
            a[k] = v
        if n.op_type.startswith("TreeEnsemble"):
            a["nodes_modes_distinct"] = sorted({m.decode() for m in attrs(n)["nodes_modes"]})
        out.append({"name": n.name, "op_type": n.op_type, "domain": n.domain or "ai.onnx", "inputs": list(n.input),
                    "outputs": list(n.output), "attributes": a})
    return out


def type_text(value_info) -> str:
    t = value_info.type
    if t.HasField("tensor_type"):
        elem = TensorProto.DataType.Name(t.tensor_type.elem_type).lower()
        dims = [str(d.dim_value) if d.HasField("dim_value") else "?" for d in t.tensor_type.shape.dim]
        return f"tensor({elem})[{','.join(dims)}]"
    if t.HasField("sequence_type"):
        return "seq(map(int64,tensor(float)))"
    return "?"


def framework_check(built: Built, x: np.ndarray, expected: dict[str, np.ndarray]) -> dict | None:
    if built.framework_predict is None:
        return None
    try:
        got = built.framework_predict(x)
    except Exception as error:  # noqa: BLE001
        return {"error": str(error)}
    report = {"what": "max |framework prediction - onnxruntime| over rows without NaN on both sides "
                      "(framework = scikit-learn/xgboost/lightgbm on the same float32 rows)"}
    for name, want in expected.items():
        key = name if name in got else "label" if want.dtype.kind in "iu" else "probabilities"
        key = key if key in got else "variable"
        if key not in got:
            continue
        f = np.asarray(got[key])
        if f.size != want.size:
            report[f"{name}_note"] = f"framework gives shape {list(f.shape)}, onnxruntime {list(want.shape)}"
        elif want.dtype.kind in "iu":
            report[f"{name}_mismatch_rows"] = [int(r) for r in np.nonzero(f.reshape(-1) != want.reshape(-1))[0]]
        else:
            f = f.reshape(want.shape).astype(np.float64)
            ok = ~(np.isnan(f) | np.isnan(want))
            report[f"{name}_max_abs_diff"] = float(np.max(np.abs(f[ok] - want[ok]))) if ok.any() else None
    return report


def build_fixture(name: str, builder: Callable, seed: int) -> tuple[Built, np.ndarray, list[str], dict, dict]:
    built = builder(seed)
    edges, pool = built.edges, built.pool
    if not built.trees and not built.nan:
        pool = pool[~np.isnan(pool).any(axis=1)]
    model_bytes = built.model.SerializeToString()
    dropped: list[str] = []
    if not built.trees:
        # Evaluate every candidate row once, leave out the ill-conditioned ones.
        candidates = np.stack(edges.values + list(pool)).astype(edges.dtype)
        bad = ill_conditioned_rows(built.model, candidates, run_ort(model_bytes, candidates))
        if len(bad) > 0.25 * len(candidates):
            raise RuntimeError(f"{name}: {len(bad)} of {len(candidates)} rows disagree with the float32 evaluation "
                               f"(a semantic difference, not rounding?): {list(bad.items())[:5]}")
        x, kinds, last = assemble(edges, pool, set(bad))
        kinds_all = edges.kinds + ["sample"] * len(pool)
        dropped = [f"{kinds_all[r]}: {why}" for r, why in sorted(bad.items()) if r <= last]
    else:
        x, kinds, _ = assemble(edges, pool)
    expected = run_ort(model_bytes, x)
    return built, x, kinds, expected, {"left_out_rows": dropped}


def write_fixture(out: Path, name: str, behaviour: str, seed: int, vers: dict) -> dict:
    builder = FIXTURES[name][0]
    built, x, kinds, expected, conditioning = build_fixture(name, builder, seed)
    reason = unsupported_reason(built.model)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    if reason:
        return {"name": name, "skipped": reason}
    folder.mkdir(parents=True)
    model_bytes = built.model.SerializeToString()
    (folder / "model.onnx").write_bytes(model_bytes)
    np.save(folder / "inputs.npy", x)
    outputs = {}
    for oname, value in expected.items():
        value = value.astype(np.int64) if value.dtype.kind in "iu" else value.astype(F32)
        np.save(folder / f"expected_{oname}.npy", value)
        outputs[oname] = {"file": f"expected_{oname}.npy", "dtype": str(value.dtype), "shape": list(value.shape)}
    m = built.model
    meta = {
        "name": name,
        "generator": "tools/gen_fixtures.py",
        "behaviour": behaviour,
        "model_type": built.model_type,
        "description": built.description,
        "task": built.task,
        "n_features": built.n_features,
        "class_labels": built.class_labels,
        "supports_missing_values_nan": built.nan,
        "inputs_file": "inputs.npy",
        "inputs_dtype": str(x.dtype),
        "inputs_shape": list(x.shape),
        "input_row_kinds": kinds,
        "expected_outputs": outputs,
        "ir_version": m.ir_version,
        "opset_import": [{"domain": o.domain or "ai.onnx", "version": o.version} for o in m.opset_import],
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "file_size_bytes": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "graph_inputs": [{"name": i.name, "type": type_text(i)} for i in m.graph.input],
        "graph_outputs": [{"name": o.name, "type": type_text(o)} for o in m.graph.output],
        "n_initializers": len(m.graph.initializer),
        "ops_distinct": ops_distinct(m),
        "nodes": node_summary(m),
        **built.extra,
        "conditioning": conditioning if not built.trees else "tree ensemble: every row kept",
        "framework_check": framework_check(built, x, expected),
        "versions": vers,
        "seed": seed,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return {"name": name, "ops": meta["ops_distinct"], "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def write_readme(out: Path, results: list[dict], unsupported: dict[str, str]):
    lines = [
        "# Extra conformance fixtures",
        "",
        "Generated by `tools/gen_fixtures.py` (do not edit by hand; rerun the script) and checked by",
        "`ExtraConformanceTests.swift`. Same layout as `../zoo` (see its README): `model.onnx`, `inputs.npy`",
        "(61 float32 rows: samples plus edge rows; int64 rows for `onehot_int_pipeline`, whose graph input is int64),",
        "`expected_<output>.npy` from onnxruntime (CPUExecutionProvider, 1 thread), `meta.json` (ops, opset,",
        "IR version, row kinds, versions).",
        "Verify with `python3 tools/gen_fixtures.py --check`.",
        "",
        "`dense_gemm_handbuilt` and `onehot_handbuilt` are built with onnx.helper (no standard converter emits",
        "those ops alone); `logreg_3class_softmax` is skl2onnx's export as is (`multi_class=1`, which onnxruntime ignores).",
        "",
        "| fixture | checks | ops |",
        "| --- | --- | --- |",
    ]
    for r in results:
        if "ops" in r:
            ops = ", ".join(o.split("::")[1] for o in r["ops"])
            lines.append(f"| `{r['name']}` | {FIXTURES[r['name']][1]} | {ops} |")
    if any(why is not None for why in unsupported.values()):
        lines += ["", "Left out (the runtime cannot load the standard export):", ""]
        lines += [f"- {what}: {why}" for what, why in unsupported.items() if why is not None]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def generate(out: Path, only: list[str] | None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    if not only:
        # Folders of fixtures this script no longer makes (renamed, or now unsupported).
        for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name not in FIXTURES):
            meta = folder / "meta.json"
            if meta.exists() and json.loads(meta.read_text()).get("generator") == "tools/gen_fixtures.py":
                print(f"  removing stale {folder.name}")
                shutil.rmtree(folder)
    vers = versions()
    results = []
    for k, (name, (_, behaviour)) in enumerate(FIXTURES.items()):
        if only and name not in only:
            continue
        result = write_fixture(out, name, behaviour, SEED + k, vers)
        results.append(result)
        if "skipped" in result:
            print(f"  SKIPPED {name}: {result['skipped']}")
        else:
            print(f"  {name:28s} {result['bytes']:8d} bytes  {', '.join(result['ops'])}")
    unsupported = probe_unsupported(SEED)
    for what, why in unsupported.items():
        if why is not None:
            print(f"  not loadable: {what}: {why}")
    if not only:
        write_readme(out, results, unsupported)
    total = sum(r.get("bytes", 0) for r in results)
    print(f"  total {total} bytes")
    return results


# --------------------------------------------------------------------------------------------
# --check


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def close(want: np.ndarray, got: np.ndarray) -> bool:
    if want.dtype.kind in "iu" or got.dtype.kind in "iu":
        return np.array_equal(want.reshape(-1), got.reshape(-1))
    if want.size != got.size:
        return False
    w, g = want.reshape(-1).astype(np.float64), got.reshape(-1).astype(np.float64)
    return bool(np.all((np.abs(w - g) <= 1e-7 * np.abs(w) + 1e-30) | (np.isnan(w) & np.isnan(g))))


def check(committed: Path, only: list[str] | None) -> int:
    failures = []
    with tempfile.TemporaryDirectory(prefix="apus-fixtures-") as tmp:
        fresh = Path(tmp)
        print(f"regenerating into {fresh}")
        generate(fresh, only)
        vers = versions()
        names = [n for n in FIXTURES if not only or n in only]
        for name in names:
            folder, regenerated = committed / name, fresh / name
            if not regenerated.exists():
                continue  # skipped as unsupported
            if not folder.exists():
                failures.append(f"{name}: not committed (run tools/gen_fixtures.py)")
                continue
            meta = json.loads((folder / "meta.json").read_text())
            x = np.load(folder / "inputs.npy")
            got = run_ort((folder / "model.onnx").read_bytes(), x)
            for oname, spec in meta["expected_outputs"].items():
                want = np.load(folder / spec["file"])
                if oname not in got:
                    failures.append(f"{name}: onnxruntime has no output {oname}")
                elif not close(want, got[oname]):
                    failures.append(f"{name}: onnxruntime {ort.__version__} no longer gives {spec['file']} "
                                    "on the committed model and inputs")
                elif not same(want, got[oname].astype(want.dtype)):
                    print(f"  note {name}/{spec['file']}: equal within 1e-7 relative, not bit-identical")
            if set(got) != set(meta["expected_outputs"]):
                failures.append(f"{name}: outputs {sorted(got)} vs committed {sorted(meta['expected_outputs'])}")
            # Determinism: the regenerated inputs and expectations should match the committed ones.
            differs = [p.name for p in sorted(regenerated.glob("*.npy"))
                       if not (folder / p.name).exists() or not same(np.load(p), np.load(folder / p.name))]
            differs += [p.name for p in sorted(folder.glob("*.npy")) if not (regenerated / p.name).exists()]
            if differs:
                message = f"{name}: regenerated {', '.join(differs)} differ from the committed files"
                if meta.get("versions") == vers:
                    failures.append(message + " with the library versions of meta.json "
                                              "(edited by hand, or the script is not deterministic)")
                else:
                    print(f"  note {message} (library versions differ from meta.json; rerun the script to refresh)")
        extra = sorted(p.name for p in committed.iterdir() if p.is_dir() and p.name not in FIXTURES) if not only else []
        for name in extra:
            failures.append(f"{name}: committed but not generated by the script")
    for f in failures:
        print(f"FAIL {f}")
    print("check: " + ("OK" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Converters iterate over sets of strings (skl2onnx's opset imports, for one): fix the
        # hash seed so that the written files are the same from run to run.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"fixture folder (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true", help="verify the committed fixtures; writes nothing to --out")
    parser.add_argument("--only", nargs="+", choices=sorted(FIXTURES), help="only these fixtures")
    args = parser.parse_args()
    if args.check:
        return check(args.out, args.only)
    print(f"writing {args.out}")
    generate(args.out, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
