#!/usr/bin/env python3
"""Kernel benchmark: Apus's native kernels vs onnxruntime (one thread), same models, same inputs,
same run. Prints rows/s per model and batch size and the ratio apus/onnxruntime.

    scripts/bench-kernels.py [--seconds 1] [--batches 1,16,256,4096] [MODEL_DIR ...]

MODEL_DIR holds model.onnx and inputs.npy (default: every model of the conformance zoo copy in
Tests/ApusRuntimeTests/Fixtures/zoo). The zoo has 64 edge rows; repeating them would let the CPU's
branch predictor learn every tree path (batch 16 would look 3x faster than batch 256), so by
default the script draws 4096 distinct rows column by column from those rows (fixed seed), and
both engines run every call on the next window of them (batch 1: a new row each call), in the same
order. `--tile` repeats the 64 rows instead. Needs a release build (the script runs scripts/build-release.sh) and
onnxruntime from PyPI (installed when missing). Both engines are pinned to the same core in turn.
"""
import argparse, json, os, subprocess, sys, time, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def ensure_onnxruntime():
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "onnxruntime", "numpy"])

def bench_ort(model, inputs, batches, seconds):
    import numpy as np, onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1000
    name = sess.get_inputs()[0].name
    src = np.load(inputs).astype(np.float32)
    out = {}
    for b in batches:
        # The same windows of distinct rows, in the same order, as `apus bench-kernels`.
        if src.shape[0] >= b:
            xs = [np.ascontiguousarray(src[k * b:(k + 1) * b]) for k in range(src.shape[0] // b)]
        else:
            xs = [np.ascontiguousarray(np.resize(src, (b, src.shape[1])))]
        warm = time.perf_counter() + seconds / 10
        k = 0
        while time.perf_counter() < warm:
            sess.run(None, {name: xs[k]})
            k = (k + 1) % len(xs)
        runs = 0
        start = time.perf_counter()
        while True:
            sess.run(None, {name: xs[k]})
            k = (k + 1) % len(xs)
            runs += 1
            if time.perf_counter() - start >= seconds:
                break
        out[b] = runs * b / (time.perf_counter() - start)
    return out, load_ms

def mixed_rows(path, count):
    """`count` distinct rows, each feature drawn from the same column of a random source row."""
    import numpy as np, tempfile
    src = np.load(path).astype(np.float32)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, src.shape[0], size=(count, src.shape[1]))
    rows = np.ascontiguousarray(src[picks, np.arange(src.shape[1])])
    out = os.path.join(tempfile.mkdtemp(prefix="apus-bench-"), "inputs.npy")
    np.save(out, rows)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--batches", default="1,16,256,4096")
    ap.add_argument("--core", default="0")
    ap.add_argument("--tile", action="store_true", help="repeat the model's input rows instead of mixing them")
    ap.add_argument("models", nargs="*")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    models = args.models or sorted(glob.glob(os.path.join(ROOT, "Tests/ApusRuntimeTests/Fixtures/zoo/*/")))
    ensure_onnxruntime()
    subprocess.check_call([os.path.join(ROOT, "scripts/build-release.sh"), "apus"], cwd=ROOT, stdout=subprocess.DEVNULL)
    apus = os.path.join(ROOT, ".build/release/apus")
    os.sched_setaffinity(0, {int(args.core)})
    print(f"{'model':<22} {'batch':>6} {'apus rows/s':>14} {'ort rows/s':>14} {'ratio':>7}   load ms apus/ort")
    print("targets: trees >= 2.5x from batch 16 and > 1x at batch 1; MLP and linear >= 1x; forest load < 50 ms, resident < 3x its file")
    for d in models:
        model, inputs = os.path.join(d, "model.onnx"), os.path.join(d, "inputs.npy")
        if not args.tile:
            inputs = mixed_rows(inputs, max(batches))
        lines = subprocess.check_output(["taskset", "-c", args.core, apus, "bench-kernels", "--model", model, "--inputs", inputs,
                                         "--batches", args.batches, "--seconds", str(args.seconds)], text=True).splitlines()
        mine = {r["batch"]: r for r in map(json.loads, lines)}
        ort, ort_load = bench_ort(model, inputs, batches, args.seconds)
        for b in batches:
            a = mine[b]["rows_per_s"]
            print(f"{os.path.basename(os.path.normpath(d)):<22} {b:>6} {a:>14,.0f} {ort[b]:>14,.0f} {a / ort[b]:>7.2f}   {mine[b]['load_ms']:.1f}/{ort_load:.1f}")
        r = mine[batches[0]]
        # The growth includes ~0.7 MB of loader code and runtime pages the first load touches, so
        # the ratio only means something for large models (the forest).
        print(f"{'':<22} resident after load: {r['model_resident_bytes'] / 1e6:.1f} MB for a {r['file_bytes'] / 1e6:.1f} MB file"
              f" ({r['model_resident_bytes'] / max(r['file_bytes'], 1):.2f}x, including ~0.7 MB of loader code pages)")

if __name__ == "__main__":
    main()
