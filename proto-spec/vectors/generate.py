#!/usr/bin/env python3
"""Writes the protocol's test vectors from protoc's Python output (independent of the Swift code):

  messages/NN-name.hex   the serialized message, lowercase hex, one line (deterministic serialization)
  messages/NN-name.json  {"message": "<full name>", "meaning": MessageToDict(preserving_proto_field_name=True)}

    python3 proto-spec/vectors/generate.py           # regenerate
    python3 proto-spec/vectors/generate.py --check   # fail if the committed files differ
"""
import importlib, json, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.dirname(HERE)


def load_modules(tmp):
    protos = [os.path.join(SPEC, "apus/v1", p) for p in ("inference.proto", "model.proto")]
    subprocess.run(["protoc", "-I", SPEC, f"--python_out={tmp}", *protos], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("apus.v1.inference_pb2"), importlib.import_module("apus.v1.model_pb2")


def vectors(pb, mpb):
    def tensor(msg, name, dtype, shape, fmt, values):
        t = msg.add(name=name, datatype=dtype, shape=shape)
        t.raw_contents = struct.pack("<" + fmt * len(values), *values)
        return t

    out = []
    r = pb.InferRequest(model="churn")
    tensor(r.inputs, "input", pb.FP32, [1, 4], "f", [0.5, -1.25, 3.0, 1e-3])
    out.append(("fp32-one-row", r))
    r = pb.InferRequest(model="churn", version="2")
    tensor(r.inputs, "input", pb.FP64, [2, 2], "d", [1.0, 2.5, -3.75, 1e300])
    out.append(("fp64-version", r))
    r = pb.InferRequest()
    tensor(r.inputs, "counts", pb.INT32, [1, 3], "i", [0, -7, 2147483647])
    out.append(("int32", r))
    r = pb.InferRequest()
    tensor(r.inputs, "ids", pb.INT64, [3], "q", [1, -1, 9007199254740993])
    out.append(("int64", r))
    r = pb.InferRequest()
    tensor(r.inputs, "flags", pb.BOOL, [1, 4], "B", [1, 0, 0, 1])
    out.append(("bool", r))
    r = pb.InferRequest(model="churn")
    tensor(r.inputs, "input", pb.FP32, [3, 2], "f", [1, 2, 3, 4, 5, 6])
    out.append(("three-rows", r))
    r = pb.InferRequest(model="churn", routing_key="user-42", id="req-7", outputs=["probabilities"])
    r.parameters["trace"] = "on"
    r.parameters["tenant"] = "acme"
    tensor(r.inputs, "input", pb.FP32, [1, 2], "f", [0.25, 0.75])
    out.append(("key-id-params-outputs", r))
    r = pb.InferRequest(model="churn", label="canary")
    tensor(r.inputs, "input", pb.FP32, [1, 1], "f", [float("nan")])
    out.append(("label-nan", r))
    r = pb.InferRequest()
    tensor(r.inputs, "a", pb.FP32, [1, 1], "f", [1])
    tensor(r.inputs, "b", pb.INT64, [1, 1], "q", [2])
    out.append(("two-inputs", r))
    resp = pb.InferResponse(model="churn", version="2", variant="canary", id="req-7", class_labels=[0, 1])
    tensor(resp.outputs, "label", pb.INT64, [2], "q", [1, 0])
    tensor(resp.outputs, "probabilities", pb.FP32, [2, 2], "f", [0.25, 0.75, 0.875, 0.125])
    out.append(("response-classifier", resp))
    resp = pb.InferResponse(model="housing", version="1")
    tensor(resp.outputs, "variable", pb.FP32, [1, 1], "f", [123456.5])
    out.append(("response-regressor", resp))
    out.append(("error", pb.Error(code="bad_request", message="input input: shape [1, 3] does not match the model's [-1, 8]")))
    md = mpb.ModelMetadata(name="churn", versions=["1", "2"], platform="onnx", version="2")
    md.inputs.add(name="input", datatype=pb.FP32, shape=[-1, 2], features=["tenure_months", "monthly_charges"])
    md.outputs.add(name="label", datatype=pb.INT64, shape=[-1])
    md.labels["stable"] = "1"
    md.labels["canary"] = "2"
    out.append(("model-metadata", md))
    out.append(("ready", mpb.ReadyResponse(name="churn", ready=True)))
    idx = mpb.RepositoryIndex()
    idx.models.add(name="churn", version="1", state="READY")
    idx.models.add(name="churn", version="3", state="FAILED", reason="model.onnx: sha256 mismatch")
    out.append(("repository-index", idx))
    return out


def main():
    from google.protobuf.json_format import MessageToDict
    check = "--check" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        pb, mpb = load_modules(tmp)
        files = {}
        for i, (name, msg) in enumerate(vectors(pb, mpb), 1):
            stem = f"{i:02d}-{name}"
            files[f"{stem}.hex"] = msg.SerializeToString(deterministic=True).hex() + "\n"
            files[f"{stem}.json"] = json.dumps({"message": msg.DESCRIPTOR.full_name,
                                                 "meaning": MessageToDict(msg, preserving_proto_field_name=True)},
                                                indent=2, sort_keys=True) + "\n"
    directory = os.path.join(HERE, "messages")
    os.makedirs(directory, exist_ok=True)
    if check:
        bad = [n for n, text in files.items() if not os.path.exists(os.path.join(directory, n)) or open(os.path.join(directory, n)).read() != text]
        extra = set(os.listdir(directory)) - set(files)
        if bad or extra:
            sys.exit(f"vectors differ: {sorted(bad)} extra: {sorted(extra)}")
        print(f"{len(files)} vector files match")
        return
    for n, text in files.items():
        open(os.path.join(directory, n), "w").write(text)
    print(f"wrote {len(files)} files to {directory}")


main()
